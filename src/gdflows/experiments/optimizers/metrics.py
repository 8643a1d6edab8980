"""Summaries of one training curve: steps to a loss target and loss spikes."""

from __future__ import annotations

import numpy as np


def steps_to_target(steps, losses, target: float) -> int | None:
    """First logged step whose loss is <= target (None if never)."""
    hit = np.flatnonzero(np.asarray(losses) <= target)
    return int(np.asarray(steps)[hit[0]]) if hit.size else None


def count_spikes(losses, factor: float = 2.0) -> int:
    """Number of loss spikes: upward crossings of ``factor`` x the running minimum.

    Step t starts a spike when L_t > factor * min_{s<t} L_s while L_{t-1} was not
    above its own threshold; a spike ends when the loss comes back under it. A
    non-finite loss (divergence) counts as above every threshold.
    """
    losses = np.asarray(losses, dtype=float)
    spikes, above, best = 0, False, np.inf
    for value in losses:
        now_above = (not np.isfinite(value)) or value > factor * best
        spikes += int(now_above and not above)
        above = now_above
        if np.isfinite(value):
            best = min(best, value)
    return spikes
