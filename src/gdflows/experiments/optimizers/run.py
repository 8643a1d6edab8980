"""One training run of one optimizer: jitted chunks of ``log_every`` steps (lax.scan).

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
import optax

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.optimizers.zoo import Method
from gdflows.experiments.report.flops import flops
from gdflows.optim import CDATState, DALState
from gdflows.optim.states import states_of


@dataclasses.dataclass
class Curve:
    steps: list
    loss: list  # full training loss after `step` steps
    h: list  # rate of the last step (nan for methods without one)
    two_over_lambda0: list  # nan unless tracked
    step_loss: list  # loss of each step's batch before the step (full loss for full batch)


def batch_schedule(n: int, batch_size: int | None, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) example indices: consecutive slices of fresh permutations."""
    if batch_size is None:
        return np.zeros((steps, 0), dtype=np.int32)
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    perms = [rng.permutation(n)[: per_epoch * batch_size] for _ in range(-(-steps // per_epoch))]
    return np.concatenate(perms).reshape(-1, batch_size)[:steps].astype(np.int32)


def step_rate(state, method: Method):
    """The rate of the step just taken: DAL's or CDAT's from its state, else the fixed rate (NaN without one)."""
    found = states_of(state, (DALState, CDATState))
    if found:
        return found[0].h
    return jnp.asarray(method.lr if method.lr is not None else jnp.nan)


def make_chunk(batch_loss, method: Method, opt, full_batch: bool):
    """jit(theta, state, x, y, idx (k, b)) -> (theta, state, h and batch loss per step)."""

    def step(carry, idx, x, y):
        theta, state = carry
        xb, yb = (x, y) if full_batch else (x[idx], y[idx])
        loss_fn = lambda t: batch_loss(t, xb, yb)  # noqa: E731
        value, g = jax.value_and_grad(loss_fn)(theta)
        update, state = opt.update(g, state, theta, value=value, value_fn=loss_fn)
        return (optax.apply_updates(theta, update), state), (step_rate(state, method), value)

    @jax.jit
    def chunk(theta, state, x, y, idx):
        (theta, state), (h, values) = jax.lax.scan(lambda c, i: step(c, i, x, y), (theta, state), idx)
        return theta, state, h, values

    return chunk


def step_flops(chunk, theta, state, x, y, idx) -> float:
    """FLOPs of one step: XLA's cost analysis of ``chunk`` compiled for a single step (``idx[:1]``)."""
    return flops(chunk.lower(theta, state, x, y, idx[:1]).compile())


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
    chunk, opt, theta0, data, steps: int, log_every: int, batch_size, seed: int, full_loss, top_eig=None
) -> tuple[Curve, np.ndarray, dict]:
    """Run ``steps`` steps; return the curve, the final theta and run facts."""
    x, y = data
    idx = jnp.asarray(batch_schedule(x.shape[0], batch_size, steps, seed))
    theta, state = theta0, opt.init(theta0)
    curve = Curve([0], [float(full_loss(theta, x, y))], [np.nan], [np.nan], [])
    v = jax.random.normal(jax.random.PRNGKey(seed), theta0.shape, theta0.dtype)
    start, diverged_at, timed_steps, elapsed = time.perf_counter(), None, 0, 0.0
    for first in range(0, steps, log_every):
        tic = time.perf_counter()
        theta, state, h, values = chunk(theta, state, x, y, idx[first : first + log_every])
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
