r"""Which method beats which, judged against the seeds' spread.

Method a beats b on a metric when its mean is better by more than the spread
of the two:

.. math:: |\bar a - \bar b| > \sqrt{s_a^2 + s_b^2}

(s the sample standard deviation over seeds); a smaller difference is a tie.
A method with a failed seed (diverged, or no finite value) loses to one
without; two such methods tie.
"""

from __future__ import annotations

import math

from gdflows.experiments.verdicts import INCONCLUSIVE, lower

WIN, TIE, LOSS = "win", "tie", "loss"


def versus(a: tuple, b: tuple, higher_is_better: bool) -> str:
    """``win``, ``tie`` or ``loss`` for a against b; each a (mean, std, failed) triple."""
    (a_mean, a_std, a_failed), (b_mean, b_std, b_failed) = a, b
    a_failed = a_failed or not math.isfinite(a_mean)
    b_failed = b_failed or not math.isfinite(b_mean)
    if a_failed or b_failed:
        return TIE if a_failed and b_failed else (LOSS if a_failed else WIN)
    lower_a = lower(a_mean, a_std, b_mean, b_std)  # the one rule for "beyond the spread"
    if lower_a.answer == INCONCLUSIVE:
        return TIE
    return WIN if lower_a.holds != higher_is_better else LOSS


def tally(outcomes) -> dict:
    """Counts of each answer in ``outcomes``."""
    outcomes = list(outcomes)
    return {answer: outcomes.count(answer) for answer in (WIN, TIE, LOSS)}
