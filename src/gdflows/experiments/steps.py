r"""The one training loop's step scan: every command that trains takes its steps here.

A step t of any optimizer (an optax transformation, :mod:`gdflows.optim` or the field) on batch B_t:

.. math::

    E_t = E_{B_t}(\theta_t), \quad g_t = \nabla E_{B_t}(\theta_t), \quad
    (u_t, s_{t+1}) = \mathrm{opt.update}(g_t, s_t, \theta_t;\ E_t, E_{B_t}), \quad
    \theta_{t+1} = \theta_t + u_t,

so DAL, CDAT and Polyak see the loss of the batch their gradient came from (``value``, ``value_fn``).
:func:`step_scan` compiles ``lax.scan`` over the steps of one logged interval: a minibatch step gathers
its examples ``idx[t]`` from the training set (split across the device mesh when one is given); a
full-batch step (``idx`` of shape (steps, 0)) uses the whole training set, chunked when a
:class:`gdflows.curvature.ChunkedLoss` is given. The minibatch order is a pure function of (seed, step)
(:func:`batch_schedule`), so a checkpoint needs no RNG state.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdflows import parallel
from gdflows.curvature.chunked import value_and_grad_of
from gdflows.errors import GDFlowsError
from gdflows.experiments.report.flops import flops
from gdflows.optim import CDATState, DALState
from gdflows.optim.states import states_of


def batch_schedule(n: int, batch_size: int | None, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) example indices: consecutive slices of fresh permutations ((steps, 0): full batch)."""
    if batch_size is None:
        return np.zeros((steps, 0), dtype=np.int32)
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    perms = [rng.permutation(n)[: per_epoch * batch_size] for _ in range(-(-steps // per_epoch))]
    return np.concatenate(perms).reshape(-1, batch_size)[:steps].astype(np.int32)


def step_rate(state, lr: float | None):
    """The rate of the step just taken: DAL's or CDAT's from its state, else the fixed ``lr`` (NaN without one)."""
    found = states_of(state, (DALState, CDATState))
    if found:
        return found[0].h
    return jnp.asarray(lr if lr is not None else jnp.nan)


def step_scan(opt: optax.GradientTransformation, batch_loss: Callable, record: Callable | None = None, mesh=None):
    """``run(theta, opt_state, idx, x, y, full_loss=None) -> (theta, opt_state, values, records)``, jit-compiled.

    ``batch_loss(theta, x, y)``: mean loss of a batch; ``idx`` (steps, b): each step's example indices
    into (x, y), b = 0 for the full set (``full_loss``, a chunked loss, when given; else
    ``batch_loss(theta, x, y)``); ``values``: E_t per step; ``records``: ``record(opt_state)`` after each
    step (e.g. :func:`step_rate`), () without ``record``; ``mesh``: minibatches split across its devices.
    """
    opt = optax.with_extra_args_support(opt)
    spread = None if mesh is None else parallel.split(mesh)

    def step(carry, idx, x, y, full_loss):
        theta, state = carry
        if idx.shape[0]:
            xb, yb = (x[idx], y[idx]) if spread is None else jax.lax.with_sharding_constraint((x[idx], y[idx]), spread)
            value_fn = lambda t: batch_loss(t, xb, yb)  # noqa: E731
            value, g = jax.value_and_grad(value_fn)(theta)
        elif full_loss is not None:
            value_fn = full_loss
            value, g = value_and_grad_of(full_loss)(theta)
        else:
            value_fn = lambda t: batch_loss(t, x, y)  # noqa: E731
            value, g = jax.value_and_grad(value_fn)(theta)
        update, state = opt.update(g, state, theta, value=value, value_fn=value_fn)
        theta = optax.apply_updates(theta, update)
        return (theta, state), (value, record(state) if record else ())

    @jax.jit
    def run(theta, state, idx, x, y, full_loss=None):
        (theta, state), (values, records) = jax.lax.scan(
            lambda c, i: step(c, i, x, y, full_loss), (theta, state), jnp.asarray(idx)
        )
        return theta, state, values, records

    return run


def network_steps(problem, opt: optax.GradientTransformation, record: Callable | None = None) -> Callable:
    """:func:`step_scan` on a :class:`gdflows.problems.network.NetworkProblem`: its training set on its mesh,
    full-batch steps chunked. ``run(theta, opt_state, idx) -> (theta, opt_state, values, records)``; a batch
    size that the mesh cannot split is refused before anything runs."""
    run = step_scan(opt, problem.batch_loss, record, problem.mesh)
    devices = problem.mesh.devices.size

    def call(theta, opt_state, idx):
        idx = np.asarray(idx, dtype=np.int32)
        if idx.ndim != 2:
            raise GDFlowsError(f"idx must have shape (steps, batch), got {idx.shape}")
        if idx.shape[1] % devices:
            raise GDFlowsError(
                f"batch size {idx.shape[1]} is not a multiple of the {devices} devices; "
                f"pass a batch size divisible by {devices} or fewer devices"
            )
        return run(theta, opt_state, idx, *problem.train_xy, problem.loss)

    return call


def step_flops(run, theta, state, x, y, idx) -> float:
    """FLOPs of one step: XLA's cost analysis of a :func:`step_scan` program compiled for one step (``idx[:1]``)."""
    return flops(run.lower(theta, state, jnp.asarray(idx[:1]), x, y).compile())
