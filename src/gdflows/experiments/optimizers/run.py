"""One training run of one optimizer on the MNIST subset: ``log_every`` steps at a time through the one step
scan (:func:`gdflows.experiments.steps.step_scan`).

Full batch: every step uses the whole training set. Minibatch: each step draws
``batch_size`` examples from a per-seed permutation sequence. The loss and
curvature handed to the optimizer (``value``, ``value_fn``) are those of the
batch the gradient came from.

Logged every chunk: full training loss, the DAL rate h (or the fixed rate), and,
when asked, the sharpness lambda_0 of the full loss (:func:`make_sharpness`,
warm-started from the previous u_0). A run stops at the first logged loss that
has diverged (:mod:`gdflows.experiments.divergence`: not finite, or above 1e6
times the starting loss).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.steps import batch_schedule


@dataclasses.dataclass
class Curve:
    steps: list
    loss: list  # full training loss after `step` steps
    h: list  # rate of the last step (nan for methods without one)
    two_over_lambda0: list  # nan unless tracked
    step_loss: list  # loss of each step's batch before the step (full loss for full batch)


def make_sharpness(loss, tol: float):
    """jit(theta, v, x, y) -> (lambda_0, u_0) of ``loss(theta, x, y)``, warm-started from v.

    The one top-eigenpair dispatch of gdflows (:func:`gdflows.curvature.top_eigenpairs`):
    dense for small D, Lanczos from v above.
    """

    @jax.jit
    def top(theta, v, x, y):
        pairs = top_eigenpairs(lambda t: loss(t, x, y), theta, 1, tol=tol, block=v[None] / jnp.linalg.norm(v))
        return pairs.values[0], pairs.vectors[0]

    return top


def train(
    steps_fn, opt, theta0, data, steps: int, log_every: int, batch_size, seed: int, full_loss, top_eig=None
) -> tuple[Curve, np.ndarray, dict]:
    """Run ``steps`` steps of ``steps_fn`` (a :func:`gdflows.experiments.steps.step_scan` recording the rate);
    return the curve, the final theta and run facts."""
    x, y = data
    idx = jnp.asarray(batch_schedule(x.shape[0], batch_size, steps, seed))
    theta, state = theta0, opt.init(theta0)
    curve = Curve([0], [float(full_loss(theta, x, y))], [np.nan], [np.nan], [])
    v = jax.random.normal(jax.random.PRNGKey(seed), theta0.shape, theta0.dtype)
    start, diverged_at, timed_steps, elapsed = time.perf_counter(), None, 0, 0.0
    for first in range(0, steps, log_every):
        tic = time.perf_counter()
        theta, state, values, h = steps_fn(theta, state, idx[first : first + log_every], x, y)
        h.block_until_ready()
        if first:  # the first chunk includes compilation
            timed_steps, elapsed = timed_steps + len(h), elapsed + time.perf_counter() - tic
        curve.step_loss += np.asarray(values, dtype=float).tolist()
        loss = float(full_loss(theta, x, y))
        lam = np.nan
        if top_eig is not None and first_divergent([loss], curve.loss[0]) is None:
            lam, v = top_eig(theta, v, x, y)
        curve.steps.append(first + len(h))
        curve.loss.append(loss)
        curve.h.append(float(h[-1]))
        curve.two_over_lambda0.append(2.0 / float(lam) if np.isfinite(lam) and lam > 0 else np.nan)
        if first_divergent([loss], curve.loss[0]) is not None:
            diverged_at = first + len(h)
            break
    ms_per_step = 1e3 * elapsed / timed_steps if timed_steps else float("nan")
    return curve, theta, {"time_s": time.perf_counter() - start, "ms_per_step": ms_per_step, "diverged_at": diverged_at}
