r"""The one training driver: every command that trains runs its steps through :func:`drive`.

Between logged steps :math:`t_0 < t_1 < \dots` it takes the steps :math:`[t_j, t_{j+1})` in one compiled
step scan (:mod:`gdflows.experiments.steps`), with only those steps on the clock (wall and process CPU),
watches their batch losses for divergence (:mod:`gdflows.experiments.divergence`):

.. math:: E_{B_s}(\theta_s) \notin \mathbb{R} \quad\text{or}\quad E_{B_s}(\theta_s) > 10^6 E_0,

checkpoints (when the command keeps checkpoints), then hands the state to the command's logger, which
records what the command measures at :math:`t_{j+1}` and may end the run (e.g. a diverged full loss).
A logged step at or below the current one is logged without taking steps (step 0; a resumed run's step).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.report.progress import track_stages


@dataclasses.dataclass
class TrainState:
    """Where a run is: its step, parameters, optimizer state, the last step's rate, and its step time so far."""

    step: int
    theta: Any
    opt_state: Any
    rate: float  # rate of the last step taken (NaN before the first step of a method that picks its own)
    wall_s: float = 0.0  # wall-clock seconds spent in steps (nothing else)
    cpu_s: float = 0.0  # process CPU seconds spent in steps


@dataclasses.dataclass(frozen=True)
class Chunk:
    """The steps just taken: ``values[i]`` = E_{B_s} at step s = ``first + i``; ``diverged_at``: the first
    diverged step among them (None: none)."""

    first: int
    values: np.ndarray
    diverged_at: int | None

    @property
    def diverged_loss(self) -> float:
        return float(self.values[self.diverged_at - self.first])


def take_steps(steps: Callable, st: TrainState, idx, target: int, start_loss: float | None) -> Chunk:
    """Advance ``st`` to ``target`` with ``steps(theta, opt_state, idx[st.step:target])`` (a step scan
    recording the rate), on the clock; the batch losses are watched against ``start_loss`` (None: the
    first of them)."""
    tic, ctic = time.perf_counter(), time.process_time()
    theta, opt_state, values, rates = steps(st.theta, st.opt_state, idx[st.step : target])
    jax.block_until_ready((theta, opt_state, values, rates))
    st.wall_s += time.perf_counter() - tic
    st.cpu_s += time.process_time() - ctic
    values = np.asarray(values, dtype=float)
    bad = first_divergent(values, values[0] if start_loss is None else start_loss)
    first = st.step
    st.step, st.theta, st.opt_state, st.rate = target, theta, opt_state, float(np.asarray(rates)[-1])
    return Chunk(first, values, None if bad is None else first + bad)


def drive(
    steps: Callable,
    st: TrainState,
    idx,
    targets: Sequence[int],
    log: Callable[..., int | None],
    start_loss: float | None = None,
    save: Callable[[TrainState], None] | None = None,
    progress: str | None = None,
) -> int | None:
    """Run ``st`` through the logged steps ``targets``; return the step where it diverged (None: it did not).

    ``steps``: a compiled step scan (:func:`gdflows.experiments.steps.network_steps`) recording the rate;
    ``idx``: the run's (steps, batch) example indices; ``log(st, chunk)``: records the logged step (``chunk``:
    the steps just taken, None when none were; ``say(text)``: what it is doing, for the progress bar) and returns
    the step where it finds the run diverged, or None; ``save(st)``: checkpoints after steps that did not
    diverge, before ``log``; ``progress``: the description of a progress bar over the steps, which stands at
    each target once it is logged, out of ``len(idx)`` (None: no bar).
    """
    if progress:
        stages = track_stages(targets, progress, total=len(idx), position=lambda target: target)
    else:
        stages = ((t, _silent) for t in targets)
    for target, say in stages:
        chunk = None
        if target > st.step:
            say(f"steps {st.step}-{target}")
            chunk = take_steps(steps, st, idx, target, start_loss)
        if save is not None and chunk is not None and chunk.diverged_at is None:
            save(st)
        found = log(st, chunk, say)
        diverged = chunk.diverged_at if chunk is not None and chunk.diverged_at is not None else found
        if diverged is not None:
            return diverged
    return None


def _silent(text: str) -> None:
    return None


def warm_up(steps: Callable, st: TrainState, idx) -> None:
    """Compile ``steps`` and run it once on ``idx`` off the clock (``st`` is left as it was), so that a
    run's step time holds no compilation."""
    jax.block_until_ready(steps(st.theta, st.opt_state, idx))
