r"""DAL's four claims against a fairly tuned field, each a rule over the pairwise outcomes of
:func:`gdflows.experiments.optimizers.spread.versus` (a beats b when its mean is better by more than
:math:`\sqrt{s_a^2 + s_b^2}`; a failed method is compared with no one) and answering ``yes``, ``no`` or
``inconclusive``.

1. :func:`beats_most_of_grid`: untuned DAL beats most of SGD's rate grid.
2. :func:`beats`: DAL (tuned) beats tuned SGD, at equal epochs or at equal FLOPs.
3. :func:`beats_every`: untuned DAL beats every tuning-free method that trained.
4. :func:`more_stable`: DAL trains at larger rate multipliers than SGD before a seed fails.

A failed DAL answers ``no`` to every claim: it did not train.
"""

from __future__ import annotations

from gdflows.experiments.optimizers.spread import FAILED, LOSS, TIE, WIN
from gdflows.experiments.verdicts import INCONCLUSIVE, NO, YES, Verdict


def beats(outcome: str, dal_failed: bool = False) -> Verdict:
    """One pairwise outcome as a claim that DAL wins: ``win`` yes, ``loss`` no, ``tie`` inconclusive (the
    seeds cannot separate them); ``failed`` no when DAL failed, inconclusive when the other method did."""
    if dal_failed:
        return Verdict(NO, "DAL failed")
    return {
        WIN: Verdict(YES),
        LOSS: Verdict(NO),
        TIE: Verdict(INCONCLUSIVE, "within the seeds' spread"),
        FAILED: Verdict(INCONCLUSIVE, "the other method failed"),
    }[outcome]


def beats_most_of_grid(outcomes: list[str], dal_failed: bool = False) -> Verdict:
    """Untuned DAL against each point of SGD's grid: ``yes`` when it wins at more than half of the points that
    trained (failed points are nobody's loss), ``no`` when its wins plus ties cannot be more than half,
    ``inconclusive`` otherwise or when no point trained."""
    if dal_failed:
        return Verdict(NO, "DAL failed")
    n = sum(o != FAILED for o in outcomes)
    wins, ties = outcomes.count(WIN), outcomes.count(TIE)
    why = f"beats {wins} of {n} rates that trained, ties {ties}"
    if n == 0:
        return Verdict(INCONCLUSIVE, "no rate of the grid trained")
    if wins > n / 2:
        return Verdict(YES, why)
    if wins + ties <= n / 2:
        return Verdict(NO, why)
    return Verdict(INCONCLUSIVE, why)


def beats_every(outcomes: dict[str, str], dal_failed: bool = False) -> Verdict:
    """Untuned DAL against each tuning-free method (name -> outcome): ``yes`` when it beats every one that
    trained (at least one did), ``no`` when one beats it, ``inconclusive`` otherwise."""
    if dal_failed:
        return Verdict(NO, "DAL failed")
    trained = {k: o for k, o in outcomes.items() if o != FAILED}
    lost = [k for k, o in trained.items() if o == LOSS]
    if lost:
        return Verdict(NO, f"loses to {', '.join(lost)}")
    if not trained:
        return Verdict(INCONCLUSIVE, "no tuning-free method trained")
    tied = [k for k, o in trained.items() if o == TIE]
    return Verdict(INCONCLUSIVE, f"ties {', '.join(tied)}") if tied else Verdict(YES)


def stable_up_to(failed_by_multiplier: dict[float, bool]) -> float:
    """The largest multiplier c such that no seed failed at any multiplier up to c (0 if the first failed)."""
    best = 0.0
    for c in sorted(failed_by_multiplier):
        if failed_by_multiplier[c]:
            break
        best = c
    return best


def more_stable(dal: dict[float, bool], sgd: dict[float, bool]) -> Verdict:
    """DAL and SGD at rate multipliers c (c -> whether any seed failed; both on the same c's, 1 their tuned or
    default rate): ``yes`` when DAL stays stable to a larger c than SGD, ``no`` when to a smaller one,
    ``inconclusive`` when to the same (e.g. both stable at every c: the multipliers did not reach the edge)."""
    if set(dal) != set(sgd):
        raise ValueError(f"DAL and SGD need the same multipliers, got {sorted(dal)} and {sorted(sgd)}")
    c_dal, c_sgd = stable_up_to(dal), stable_up_to(sgd)
    why = f"stable up to x{c_dal:g} (DAL) and x{c_sgd:g} (SGD)"
    if c_dal > c_sgd:
        return Verdict(YES, why)
    return Verdict(NO if c_dal < c_sgd else INCONCLUSIVE, why)
