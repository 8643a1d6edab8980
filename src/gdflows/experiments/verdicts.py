r"""Verdict rules: does a measured number support a claim? ``yes``, ``partly``, ``no`` or ``inconclusive``.

Every verdict the harness writes (the reproduction's ``agrees`` column, report
prose, figure titles) comes from one of these functions, each a small rule over
measured numbers with its thresholds in the signature. Comparisons across
seeds use their spread: a difference of means counts only when it exceeds

.. math:: s = \sqrt{s_a^2 + s_b^2},

the standard deviation of the difference of one run of each (``s_a``, ``s_b``:
the seeds' sample standard deviations); a smaller difference is
``inconclusive``, never a win.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

YES, PARTLY, NO, INCONCLUSIVE = "yes", "partly", "no", "inconclusive"
ANSWERS = (YES, PARTLY, NO, INCONCLUSIVE)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """An answer from :data:`ANSWERS` and, where it helps, why (``"partly: speed inconclusive"``)."""

    answer: str
    why: str = ""

    def __post_init__(self):
        if self.answer not in ANSWERS:
            raise ValueError(f"answer must be one of {ANSWERS}, got {self.answer!r}")

    def __str__(self) -> str:
        return f"{self.answer}: {self.why}" if self.why else self.answer

    @property
    def holds(self) -> bool:
        return self.answer == YES


def combine(parts: Mapping[str, Verdict]) -> Verdict:
    """Several parts of one claim: ``yes`` if all hold, ``partly`` if some (fully or partly) do,
    ``no`` if none does and one says no, else ``inconclusive``; ``why`` names each part's answer."""
    answers = [v.answer for v in parts.values()]
    why = ", ".join(f"{name} {v.answer}" for name, v in parts.items())
    if all(a == YES for a in answers):
        return Verdict(YES)
    if any(a in (YES, PARTLY) for a in answers):
        return Verdict(PARTLY, why)
    return Verdict(NO if NO in answers else INCONCLUSIVE, why)


def each(passed: Mapping[str, bool]) -> Verdict:
    """A claim made for every case: ``yes`` if every case passes, ``partly`` if some, ``no`` if none."""
    failed = [name for name, ok in passed.items() if not ok]
    if not failed:
        return Verdict(YES)
    if len(failed) < len(passed):
        return Verdict(PARTLY, f"not for {', '.join(failed)}")
    return Verdict(NO)


def only_one_follows(name: str, distance: float, others: Mapping[str, float], tol: float, apart: float) -> Verdict:
    """ "Only ``name`` follows GD": it stays within ``tol`` of GD and every other flow ends more than ``apart`` away.

    ``partly`` when it follows but so does another flow; ``no`` when it does not follow.
    """
    if not distance <= tol:
        return Verdict(NO, f"{name} is {distance:.1e} from GD")
    close = [o for o, d in others.items() if not d > apart]
    return Verdict(PARTLY, f"so does {', '.join(close)}") if close else Verdict(YES)


def follows_through_escape(tracked: int, escape: int | None, steps: int) -> Verdict:
    """Does a flow follow GD out of a sharp minimum?

    ``tracked``: the last GD step up to which the flow stays within tolerance
    of GD; ``escape``: the first GD step outside the minimum's basin (None: GD
    stayed in it for all ``steps``). ``yes``: followed to the end;
    ``partly``: followed past the escape but not to the end; ``no``: lost
    before GD escaped; ``inconclusive``: GD never escaped.
    """
    if escape is None:
        return Verdict(INCONCLUSIVE, f"GD did not leave the minimum in {steps} steps")
    if tracked >= steps:
        return Verdict(YES)
    if tracked >= escape:
        return Verdict(PARTLY, f"follows GD out (step {escape}) up to step {tracked} of {steps}")
    return Verdict(NO, f"follows GD to step {tracked}, GD escapes at step {escape}")


def escape_time_matches(flow: float, gd: float, rival: float, rtol: float = 0.01) -> Verdict:
    """A flow's escape time from a saddle against GD's, and a rival flow's (the NGF) that should be off.

    ``yes``: within ``rtol`` of GD and the rival more than ``rtol`` off;
    ``partly``: within ``rtol`` but the rival too (nothing told apart), or
    closer to GD than the rival but beyond ``rtol``; ``no``: otherwise.
    """
    off = lambda t: abs(t - gd) / gd if math.isfinite(t) else math.inf  # noqa: E731
    if off(flow) <= rtol:
        return Verdict(YES) if off(rival) > rtol else Verdict(PARTLY, f"the rival is within {rtol:.0%} too")
    if off(flow) < off(rival):
        return Verdict(PARTLY, f"closer than the rival, but {off(flow):.1%} from GD")
    return Verdict(NO)


def edge_of_stability(rose: bool, hovers: bool, signs: Verdict) -> Verdict:
    """lambda_0 rises to 2/h and hovers there (the edge), and the PF predicts the loss's sign (``signs``)."""
    edge = Verdict(YES if rose and hovers else NO)
    return combine({"edge": edge, "sign": signs})


# Drift over its leading term on a quadratic, per direction with x = h lambda:
# 2 (e^{-x} - 1 + x) / x^2, which is 1 at x -> 0 and 0.568 at x = 2 (the edge).
DRIFT_BAND = (0.5, 2.0)
DRIFT_R_MIN = 0.9


def drift_tracks(pearson_log: float, median_ratio: float, r_min: float = DRIFT_R_MIN, band=DRIFT_BAND) -> Verdict:
    """|Hg| predicts the drift: correlated (Pearson r of the logs >= ``r_min``) and at scale.

    Scale: the median of drift / ((h^2/2)|Hg|) lies in ``band``. On a
    quadratic the ratio is 2 (e^{-x} - 1 + x) / x^2 per direction (x = h
    lambda), within [0.568, 1] for 0 <= x <= 2; [0.5, 2] allows that range
    and up to a factor 2 from third derivatives. A prediction off by a
    constant factor keeps r and fails the band.
    """
    parts = {
        "correlation": Verdict(YES if pearson_log >= r_min else NO),
        "scale": Verdict(YES if band[0] <= median_ratio <= band[1] else NO),
    }
    return combine(parts)


def sample_std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); NaN with fewer than two values."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))


@dataclasses.dataclass(frozen=True)
class SeedStats:
    """One method over several seeds: how many ran and diverged, the others' mean final loss and its
    sample standard deviation (NaN when fewer than two seeds survived)."""

    seeds: int
    diverged: int
    mean: float
    std: float

    @classmethod
    def of(cls, seeds: int, losses: Sequence[float]) -> SeedStats:
        """From the final losses of the seeds that did not diverge."""
        mean = sum(losses) / len(losses) if losses else math.nan
        return cls(seeds, seeds - len(losses), mean, sample_std(losses))


def spread(std_a: float, std_b: float) -> float:
    """sqrt(s_a^2 + s_b^2), the standard deviation of the difference of one run of each."""
    return math.hypot(std_a, std_b)


def lower(mean_a: float, std_a: float, mean_b: float, std_b: float) -> Verdict:
    """Is a lower than b? ``yes``/``no`` when the means differ by more than :func:`spread`, else ``inconclusive``
    (also when a mean or a standard deviation is missing)."""
    s = spread(std_a, std_b)
    if not all(math.isfinite(v) for v in (mean_a, mean_b, s)):
        return Verdict(INCONCLUSIVE, "no spread to compare with")
    if abs(mean_a - mean_b) <= s:
        return Verdict(INCONCLUSIVE, f"difference {abs(mean_a - mean_b):.3g} within the spread {s:.3g}")
    return Verdict(YES if mean_a < mean_b else NO)


def more_stable(a: SeedStats, b: SeedStats) -> Verdict:
    """Is a more stable than b: fewer diverged seeds (a tie is ``inconclusive``, not more stable)."""
    fa, fb = a.diverged / a.seeds, b.diverged / b.seeds
    if fa == fb:
        return Verdict(INCONCLUSIVE, f"both {a.diverged}/{a.seeds} diverged")
    return Verdict(YES if fa < fb else NO)


def faster(a: SeedStats, b: SeedStats) -> Verdict:
    """Is a faster than b: lower final loss over the seeds that did not diverge, beyond the spread."""
    return lower(a.mean, a.std, b.mean, b.std)


def stability_tradeoff(by_p: Mapping[float, SeedStats]) -> Verdict:
    """DAL-p: larger p more stable, smaller p faster, over each pair of neighbouring p."""
    ps: Sequence[float] = sorted(by_p)
    pairs = list(zip(ps, ps[1:]))
    stable = combine({f"{b:g} vs {a:g}": more_stable(by_p[b], by_p[a]) for a, b in pairs})
    fast = combine({f"{a:g} vs {b:g}": faster(by_p[a], by_p[b]) for a, b in pairs})
    return combine({"stability": stable, "speed": fast})


def cost_ratio(ratio: float, one_extra: float = 2.5, two_extra: float = 3.5) -> Verdict:
    """ "About one extra gradient per step": the cost over GD's is at most ``one_extra`` (2 = exactly one
    extra gradient) ``yes``; at most ``two_extra`` ``partly``; above ``no``."""
    if ratio <= one_extra:
        return Verdict(YES)
    if ratio <= two_extra:
        return Verdict(PARTLY, f"{ratio:.2f}x, up to two extra gradients")
    return Verdict(NO)


def meets(measured: float, threshold: float, at_most: bool = True) -> Verdict:
    """One measured number against its threshold: ``yes`` if it meets it (<= when ``at_most``, else >=),
    ``no`` if not, ``inconclusive: not measured`` for NaN (the condition never arose, e.g. no second
    eigenvalue reached 2/h, so nothing could be measured)."""
    if not math.isfinite(measured):
        return Verdict(INCONCLUSIVE, "not measured")
    return Verdict(YES) if (measured <= threshold if at_most else measured >= threshold) else Verdict(NO)


def central_tracks(loss: bool, sharpness: bool, trajectory: bool) -> Verdict:
    """The central flow as GD's time average: ``yes`` if GD's averaged loss tracks its prediction, its
    lambda_0 holds at 2/h and averaged GD ends near it; ``partly`` if the loss or the trajectory holds
    (sharpness alone is not tracking); ``no`` otherwise."""
    parts = {"loss": loss, "sharpness": sharpness, "trajectory": trajectory}
    failed = [name for name, ok in parts.items() if not ok]
    if not failed:
        return Verdict(YES)
    if loss or trajectory:
        return Verdict(PARTLY, f"not {', '.join(failed)}")
    return Verdict(NO)
