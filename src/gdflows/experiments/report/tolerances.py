r"""Numbers a report states, each with the tolerance a rerun on another machine must meet.

A report's verdicts must come out the same everywhere; its numbers need not
come out in the same bytes: float rounding depends on the CPU (kernel blocking,
FMA, summation order), and chaotic runs amplify it. So every number that backs a
claim is :class:`Measured`: its value, an absolute tolerance and the basis of
that tolerance, declared where the number is computed:

* :func:`exact`: counts and deterministic integers (tolerance 0);
* :func:`solver`: a value set by a solver's accuracy, up to ``tol``;
* :func:`binomial`: a rate r over n events of a chaotic run: a rerun's rate and
  the committed one are two draws, so their difference has standard deviation
  :math:`\sqrt{2r(1-r)/n}`, and the tolerance is :math:`z\sqrt{2r(1-r)/n}`
  (at least 1/n: one event more or less);
* :func:`seeds`: a mean over n seeds with sample standard deviation s: the
  difference of two such means has standard deviation :math:`s\sqrt{2/n}`, so
  :math:`z s \sqrt{2/n}`; a sample standard deviation itself within 1.5 s.

:func:`compare` holds a rerun's numbers against the committed ones, each within
the committed tolerance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

Z = 2.0  # standard errors a chaotic number may move


@dataclasses.dataclass(frozen=True)
class Measured:
    """A reported number: ``value``, the absolute ``tol`` a rerun must meet, and the ``basis`` of ``tol``."""

    value: float
    tol: float
    basis: str

    def __post_init__(self):
        if not (self.tol >= 0):
            raise ValueError(f"a tolerance must be >= 0, got {self.tol!r}")


def exact(value) -> Measured:
    return Measured(float(value), 0.0, "exact")


def solver(value, tol: float) -> Measured:
    return Measured(float(value), float(tol), "solver accuracy")


def binomial(rate: float, n: int, z: float = Z) -> Measured:
    tol = max(z * math.sqrt(2 * rate * (1 - rate) / n), 1 / n) if n > 0 else 1.0
    return Measured(float(rate), tol, f"{z:g} x the spread of two binomial rates over {n}")


def seeds(mean: float, std: float, n: int, z: float = Z) -> Measured:
    return Measured(float(mean), z * std * math.sqrt(2 / n), f"{z:g} x the seeds' spread of a mean of {n}")


def seeds_std(std: float) -> Measured:
    return Measured(float(std), 1.5 * std, "a sample std of few seeds: within 1.5 of itself")


def relative(value, rtol: float, basis: str) -> Measured:
    """``value`` within ``rtol`` of itself (a count or ratio of a chaotic run, with the reason in ``basis``)."""
    return Measured(float(value), abs(float(value)) * rtol, basis)


def rows(claim: str, numbers: Mapping[str, Measured]) -> list[dict]:
    """One table row per number of ``claim``."""
    return [
        {"claim": claim, "number": name, "value": m.value, "tolerance": m.tol, "basis": m.basis}
        for name, m in numbers.items()
    ]


def compare(ours: Sequence[Mapping], committed: Sequence[Mapping]) -> list[str]:
    """Each committed number that this run misses, lacks, or moves beyond the committed tolerance (and
    numbers only this run has), one line each."""
    key = lambda r: (r["claim"], r["number"])  # noqa: E731
    mine = {key(r): float(r["value"]) for r in ours}
    problems = []
    for r in committed:
        k, value, tol = key(r), float(r["value"]), float(r["tolerance"])
        if k not in mine:
            problems.append(f"{k[0]} / {k[1]}: not computed by this run")
        elif not abs(mine[k] - value) <= tol and not (math.isnan(mine[k]) and math.isnan(value)):
            problems.append(f"{k[0]} / {k[1]}: {mine[k]:.6g} against {value:.6g} +- {tol:.3g} ({r['basis']})")
    extra = set(mine) - {key(r) for r in committed}
    return problems + [f"{c} / {n}: not in the committed numbers" for c, n in sorted(extra)]
