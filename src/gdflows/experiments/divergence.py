"""When a training run has diverged: the one rule of every training loop in the harness.

A loss diverged at step n when it is not finite, or when it exceeds
:data:`DIVERGENCE_FACTOR` times the loss the run started from:

.. math:: E_n \\notin \\mathbb{R} \\quad\\text{or}\\quad E_n > 10^6\\, E_0 .

GD that far above its start is not coming back in any run we report (a float64
loss keeps climbing to 1e252 before it overflows, and every diagnosis on the way
is of the blow-up, not of training); the run is recorded as "diverged at step n"
and reported up to there, never as completed.
"""

from __future__ import annotations

import numpy as np

DIVERGENCE_FACTOR = 1e6  # a loss above this multiple of the starting loss has diverged


def divergence_bound(start_loss: float) -> float:
    """The largest loss that has not diverged, for a run that started at ``start_loss``."""
    return DIVERGENCE_FACTOR * abs(float(start_loss))


def first_divergent(losses, start_loss: float) -> int | None:
    """Index of the first loss in ``losses`` (1-D) that is non-finite or above the bound, or None."""
    losses = np.asarray(losses, dtype=float).reshape(-1)
    bad = ~np.isfinite(losses) | (losses > divergence_bound(start_loss))
    return int(np.argmax(bad)) if bool(np.any(bad)) else None


def outcome_diverged(step: int) -> str:
    """The outcome text of a run that diverged at ``step``."""
    return f"diverged at step {step}"


def is_diverged(outcome) -> bool:
    """Whether a metrics row's ``outcome`` (:func:`outcome_diverged`'s text, or empty/None) records a divergence."""
    return str(outcome or "").startswith("diverged")
