r"""Which method beats which, judged against the seeds' spread; failed runs set apart.

Method a beats b on a metric when its mean is better by more than the spread
of the two:

.. math:: |\bar a - \bar b| > \sqrt{s_a^2 + s_b^2}

(s the sample standard deviation over seeds); a smaller difference is a tie.
A method with a failed seed (:func:`failed_run`: diverged, no finite value,
ended at chance accuracy or above its starting loss) is compared with no one:
the pair is ``failed``, shown as such and counted as nobody's win or loss.
"""

from __future__ import annotations

import math

from gdflows.experiments.predictors import wilson
from gdflows.experiments.verdicts import INCONCLUSIVE, lower

WIN, TIE, LOSS, FAILED = "win", "tie", "loss", "failed"


def at_chance(accuracy: float, n: int, classes: int) -> bool:
    """True when accuracy on n test examples is not above guessing: the lower end of its 95% Wilson interval
    is at or below 1 / classes (or it is not a number)."""
    if not math.isfinite(accuracy):
        return True
    return wilson(round(accuracy * n), n)[0] <= 1 / classes


def failed_run(accuracy: float, n: int, classes: int, loss: float, initial_loss: float, diverged: bool) -> bool:
    """A run that failed to train: diverged, ended at chance accuracy (:func:`at_chance`), or ended with its
    loss not finite or at or above its starting loss."""
    return diverged or at_chance(accuracy, n, classes) or not loss < initial_loss


def versus(a: tuple, b: tuple, higher_is_better: bool) -> str:
    """``win``, ``tie`` or ``loss`` for a against b, or ``failed`` when either failed; each a (mean, std,
    failed) triple (a mean that is not finite is a failure)."""
    (a_mean, a_std, a_failed), (b_mean, b_std, b_failed) = a, b
    if a_failed or b_failed or not (math.isfinite(a_mean) and math.isfinite(b_mean)):
        return FAILED
    lower_a = lower(a_mean, a_std, b_mean, b_std)  # the one rule for "beyond the spread"
    if lower_a.answer == INCONCLUSIVE:
        return TIE
    return WIN if lower_a.holds != higher_is_better else LOSS


def tally(outcomes) -> dict:
    """Counts of each answer in ``outcomes``."""
    outcomes = list(outcomes)
    return {answer: outcomes.count(answer) for answer in (WIN, TIE, LOSS, FAILED)}
