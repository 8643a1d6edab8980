r"""The tuning protocol of ``compare-optimizers --scale tuned``: every method with a rate-like hyperparameter gets
the same budget, chosen on a validation split; the tuning-free methods run at their defaults.

A :class:`Knob` is one method's tuned hyperparameter (SGD's, momentum's, Adam's and schedule-free SGD's rate
``lr``; DAL-p's exponent ``p``) on a log grid

.. math:: v_k = c \, f^{k}, \qquad k = -m, \dots, m \quad (2m + 1 = \text{points}),

with centre c and factor f. Seed 0 runs every point; the point with the lowest final validation loss (seed 0)
among those that did not fail on the validation split on any seed run so far is chosen (:func:`choose`); while
the chosen point is at an edge of the points tried, one more point beyond that edge is run (at most
``extensions`` per knob, the same for every knob). The chosen point then runs the other seeds; if one of them
fails, the point is no longer a choice and the next is taken (a rate that trains on one seed only is not a
tuned rate). Then the chosen value runs the other seeds, as do every point of SGD's grid (to set
untuned DAL against all of it), the tuning-free group at its defaults, and the rate multipliers: DAL-p at the
chosen p with its rate scaled by c_j = f_SGD^j (:math:`h = c_j \min(2 / v^p, h_{max})`), beside SGD at c_j
times its tuned rate (a point of its grid, or beyond it), j = 1..``multiplier_steps``.

Everything here is a pure function of the results rows so far (:func:`next_jobs`), so an interrupted run
resumes where it stopped and the same rows always ask for the same runs.
"""

from __future__ import annotations

import dataclasses
import math

from gdflows.errors import GDFlowsError
from gdflows.experiments.optimizers.spread import failed_run
from gdflows.experiments.optimizers.tables import num
from gdflows.experiments.optimizers.zoo import Method, method

SGD = "gd"


@dataclasses.dataclass(frozen=True)
class Knob:
    """One tuned hyperparameter: ``family``'s ``name`` on the grid centre * factor^k (see the module)."""

    family: str
    name: str  # "lr" or "p"
    centre: float
    factor: float
    fixed: tuple = ()  # the family's other hyperparameters, as (name, value) pairs

    def value(self, k: int) -> float:
        """v_k = centre * factor^k, to three significant digits (the names and the grid agree)."""
        return float(f"{self.centre * self.factor**k:.3g}")

    def method_name(self, k: int) -> str:
        return f"{self.family}_{self.name}{self.value(k):g}"

    def method(self, k: int, rate_scale: float = 1.0) -> Method:
        """The method at grid point k; for DAL, ``rate_scale`` c multiplies the rate and its cap."""
        hyper = dict(self.fixed) | {self.name: self.value(k)}
        if rate_scale == 1.0:
            return method(self.family, self.method_name(k), **hyper)
        hyper |= {"rate_scale": rate_scale, "max_lr": rate_scale * hyper["max_lr"]}
        return method(self.family, f"{self.method_name(k)}_x{rate_scale:.3g}", **hyper)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The protocol: the knobs, the grid size, the edge extensions, the tuning-free group, the multipliers."""

    knobs: tuple[Knob, ...]
    free: tuple[Method, ...]  # the tuning-free group at its defaults (DAL's default is a point of its knob)
    dal_default: int = 0  # the grid point k of DAL's knob that is its default (p = 1: k = 0)
    points: int = 5
    extensions: int = 3
    multiplier_steps: int = 3

    def __post_init__(self):
        if self.points % 2 != 1 or self.points < 3:
            raise GDFlowsError(f"a tuning grid has an odd number >= 3 of points (centred), got {self.points}")
        families = [k.family for k in self.knobs]
        if SGD not in families or "dal" not in families:
            raise GDFlowsError(f"the tuning protocol needs knobs for gd and dal, got {families}")

    def knob(self, family: str) -> Knob:
        return next(k for k in self.knobs if k.family == family)

    def multipliers(self) -> list[float]:
        """c_j = f_SGD^j, j = 1..multiplier_steps: SGD's grid steps, so SGD's multiplied rate is a grid point."""
        f = self.knob(SGD).factor
        return [float(f"{f**j:.3g}") for j in range(1, self.multiplier_steps + 1)]


def validation_failed(row: dict) -> bool:
    """A tuning run that failed on the validation split: diverged, at chance accuracy there, or ending at or
    above its starting validation loss (:func:`~gdflows.experiments.optimizers.spread.failed_run`)."""
    n = int(num(row["val_n"]))
    return failed_run(
        num(row["val_acc"]), n, int(num(row["classes"])), num(row["val_loss"]), num(row["val_loss_start"]),
        str(row["diverged"]) == "True",
    )  # fmt: skip


def choose(losses: dict[int, float | None]) -> int | None:
    """The grid point with the lowest validation loss; ``None`` marks a failed point. None if all failed."""
    ok = {k: v for k, v in losses.items() if v is not None and math.isfinite(v)}
    return min(ok, key=ok.get) if ok else None


@dataclasses.dataclass(frozen=True)
class Settled:
    """Where one knob stands: the points tried or to try, the chosen one (None: not yet, or every point failed),
    and whether the choice sits at an edge the extensions could not lift it from."""

    knob: Knob
    ks: tuple[int, ...]
    chosen: int | None
    at_edge: bool
    missing: tuple[int, ...]


def settle(knob: Knob, tuning: Tuning, runs: dict[str, list[dict]]) -> Settled:
    """The knob's state given the rows so far (method name -> its rows, any seeds): grid, then edge extensions
    (every point failed counts as the lower edge: the rates were too large)."""
    m = tuning.points // 2
    ks = list(range(-m, m + 1))
    while True:
        seed0 = {k: next((r for r in runs.get(knob.method_name(k), []) if str(r["seed"]) == "0"), None) for k in ks}
        missing = tuple(k for k, r in seed0.items() if r is None)
        if missing:
            return Settled(knob, tuple(ks), None, False, missing)
        failed = {k: any(validation_failed(r) for r in runs[knob.method_name(k)]) for k in ks}
        losses = {k: None if failed[k] else num(r["val_loss"]) for k, r in seed0.items()}
        best = choose(losses)
        low = best is None or best == ks[0]
        if not (low or best == ks[-1]):
            return Settled(knob, tuple(ks), best, False, ())
        if len(ks) >= tuning.points + tuning.extensions:
            return Settled(knob, tuple(ks), best, True, ())
        ks = [ks[0] - 1, *ks] if low else [*ks, ks[-1] + 1]


def settle_all(tuning: Tuning, rows: list[dict]) -> list[Settled]:
    runs = {}
    for r in rows:
        runs.setdefault(r["method"], []).append(r)
    return [settle(k, tuning, runs) for k in tuning.knobs]


def next_jobs(tuning: Tuning, rows: list[dict], seeds: int) -> list[tuple[Method, int]]:
    """The (method, seed) runs still to do given the results ``rows`` of one net: the tuning grids first; once
    every knob has settled, the chosen points' other seeds (a failure there moves the choice); then SGD's grid,
    the tuning-free group and the multipliers (see the module)."""
    done = {(r["method"], str(r["seed"])) for r in rows}
    settled = settle_all(tuning, rows)
    if any(s.missing for s in settled):
        return [(s.knob.method(k), 0) for s in settled for k in s.missing]
    wanted = [s.knob.method(s.chosen) for s in settled if s.chosen is not None]
    confirm = [(m, s) for m in wanted for s in range(seeds) if (m.name, str(s)) not in done]
    if confirm:
        return confirm
    sgd, dal = (next(s for s in settled if s.knob.family == f) for f in (SGD, "dal"))
    wanted += [sgd.knob.method(k) for k in sgd.ks]
    wanted += [dal.knob.method(tuning.dal_default), *tuning.free]
    for j, c in enumerate(tuning.multipliers(), start=1):
        if dal.chosen is not None:
            wanted.append(dal.knob.method(dal.chosen, rate_scale=c))
        if sgd.chosen is not None:
            wanted.append(sgd.knob.method(sgd.chosen + j))
    unique = list({m.name: m for m in wanted}.values())
    return [(m, s) for m in unique for s in range(seeds) if (m.name, str(s)) not in done]
