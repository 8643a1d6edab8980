r"""The central flow's solver: fixed Euler substeps over GD steps, the tracked subspace renewed once per step.

The flow and its field are :mod:`gdflows.flows.central` (docs/theory.md, section 9); this module runs
it, as :func:`gdflows.integrate` runs the other flows, and sums the solve up in a
:class:`gdflows.Status` (``ok``, ``nonfinite``, ``not_converged``, ``subspace_too_small``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.flows.central import Central, CentralInfo, Tracked
from gdflows.flows.central_rmsprop import CentralRMSProp
from gdflows.params import is_flat, ravel, states_like, with_flat_loss
from gdflows.status import SUBSPACE_MARGIN, Status
from gdflows.validation import check_loss_at, check_steps, is_integer_in


class StepRecord(eqx.Module):
    """Per GD step n: the state at t = n h and what its ``substeps`` evaluations cost and reached."""

    theta: jax.Array
    loss: jax.Array
    prediction: jax.Array
    eigenvalues: jax.Array
    S: jax.Array
    ceiling: jax.Array
    hvps: jax.Array
    sdcp_iterations: jax.Array
    sdcp_residual: jax.Array
    converged: jax.Array


def _record(info: CentralInfo, theta, infos: CentralInfo, hvps, eig_converged) -> StepRecord:
    """The record of a GD step: values at its first substep, costs over ``infos`` (all its substeps) and
    the basis refresh (``hvps``, ``eig_converged``)."""
    return StepRecord(
        theta=theta,
        loss=info.loss,
        prediction=info.prediction,
        eigenvalues=info.eigenvalues,
        S=info.S,
        ceiling=info.ceiling,
        hvps=hvps + jnp.sum(infos.hvps),
        sdcp_iterations=jnp.sum(infos.sdcp_iterations),
        sdcp_residual=jnp.max(infos.error),
        converged=eig_converged & jnp.all(infos.converged),
    )


def _gd_step(flow: Central, state: Tracked):
    """One GD step of flow time: the basis renewed, then ``substeps`` Euler substeps of dt; returns
    (state, record at its start)."""

    start = state.theta
    state, hvps, eig_converged = flow.refresh(state)
    state, infos = jax.lax.scan(lambda s, _: flow.substep(s), state, None, length=flow.substeps)
    first = jax.tree.map(lambda x: x[0], infos)
    return state, _record(first, start, infos, hvps, eig_converged)


@eqx.filter_jit
def advance(flow: Central, state: Tracked, steps, rows: int) -> tuple[Tracked, StepRecord]:
    """``steps`` (<= ``rows``) GD steps of the central flow from ``state``: the state after, and
    ``rows`` records, one per step taken (the rest zero). ``steps`` is traced: one compile for any count."""
    shapes = jax.eval_shape(lambda s: _gd_step(flow, s)[1], state)
    records = jax.tree.map(lambda x: jnp.zeros((rows,) + x.shape, x.dtype), shapes)

    def body(n, carry):
        state, records = carry
        state, record = _gd_step(flow, state)
        return state, jax.tree.map(lambda r, x: r.at[n].set(x), records, record)

    return jax.lax.fori_loop(0, steps, body, (state, records))


@dataclasses.dataclass(frozen=True)
class CentralSolution:
    """The central flow at t = n h, n = 0..steps (arrays with a leading steps + 1 axis, costs with steps).

    thetas (steps+1, D), or a pytree like theta0 with that leading axis; loss: L(w); prediction: L + <Sigma, H>/2 (GD's
    time-averaged loss); eigenvalues (steps+1, k): the tracked eigenvalues;
    S (steps+1, k, k); ceiling; hvps, sdcp_iterations (steps,): summed over
    the substeps of each GD step; gradients_per_step and d3_per_step: fixed
    by the discretisation; sdcp_residual (steps,): largest over the substeps;
    converged (steps,); status.
    """

    ts: np.ndarray
    thetas: np.ndarray
    loss: np.ndarray
    prediction: np.ndarray
    eigenvalues: np.ndarray
    S: np.ndarray
    ceiling: np.ndarray
    hvps: np.ndarray
    sdcp_iterations: np.ndarray
    sdcp_residual: np.ndarray
    converged: np.ndarray
    gradients_per_step: int
    d3_per_step: int
    status: Status

    @property
    def num_field_evals(self) -> int:
        """Field evaluations made (substeps per GD step, plus the last row's)."""
        return int(self.gradients_per_step * (len(self.ts) - 1) + 1)


def _status(records: StepRecord, dim: int) -> Status:
    if not np.all(np.isfinite(records.theta)):
        return Status.NONFINITE
    if not np.all(records.converged[:-1]):  # the last row's step is not part of the solve
        return Status.NOT_CONVERGED
    k = records.eigenvalues.shape[1]
    if k < dim and np.any(records.eigenvalues[:, -1] > SUBSPACE_MARGIN * records.ceiling):
        return Status.SUBSPACE_TOO_SMALL
    return Status.OK


def solve_central(
    flow: Central,
    theta0,
    steps: int,
    chunk: int = 100,
    callback: Callable[[int], None] | None = None,
    key=None,
    nu0=None,
) -> CentralSolution:
    """Solve ``flow`` from ``theta0`` over ``steps`` GD steps (see the module docstring).

    ``theta0``: a flat vector or a pytree of parameters (the flow's loss then takes that pytree, and
    ``thetas`` comes back as that pytree with a leading steps + 1 axis). Runs ``chunk`` GD steps per compiled
    call and calls ``callback(steps done)`` after each; stops early once the state is non-finite (later rows NaN).
    ``key`` draws the first Lanczos block. ``nu0``: RMSProp's EMA at the start, like ``theta0`` (flows from
    :func:`gdflows.flows.central_rmsprop` only; default g(theta0)^2).
    """
    if not isinstance(flow, Central):
        raise GDFlowsError(f"solve_central needs a flow from gdflows.flows.central(), got {type(flow).__name__}")
    rmsprop = isinstance(flow, CentralRMSProp)
    if nu0 is not None and not rmsprop:
        raise GDFlowsError("nu0 is RMSProp's EMA: pass it with a flow from gdflows.flows.central_rmsprop()")
    steps = check_steps(steps)
    params = theta0
    theta0, unravel = ravel(params)
    if nu0 is not None:
        nu0 = ravel(nu0)[0]
        if nu0.shape != theta0.shape or not bool(jnp.all(nu0 >= 0)):
            raise GDFlowsError(f"nu0 must be like theta0 ({theta0.size} entries) and >= 0")
    if not is_flat(params):
        flow = with_flat_loss(flow, unravel)
    if jnp.iscomplexobj(theta0):
        raise GDFlowsError("the central flow is real: pass real parameters")
    check_loss_at(flow.loss, theta0)
    if not is_integer_in(chunk, 1):
        raise GDFlowsError(f"chunk must be an integer >= 1, got {chunk!r}")
    if flow.k > theta0.shape[0]:
        raise GDFlowsError(f"k = {flow.k} exceeds the dimension D = {theta0.shape[0]}; pass k <= D")
    state = (
        flow.start(theta0, key, nu=None if nu0 is None else nu0.astype(theta0.dtype))
        if rmsprop
        else flow.start(theta0, key)
    )
    parts, done, finite = [], 0, True
    while done <= steps and finite:  # the last call also records the final state (the step it takes is dropped)
        n = min(chunk, steps + 1 - done)
        state, records = advance(flow, state, jnp.asarray(n), chunk)
        parts.append(jax.tree.map(lambda x, n=n: np.asarray(x)[:n], records))
        done += n
        finite = bool(np.all(np.isfinite(parts[-1].theta)))
        if callback is not None:
            callback(min(done, steps))
    records = _nan_rows_to(jax.tree.map(lambda *xs: np.concatenate(xs), *parts), steps + 1)
    m = flow.k * (flow.k + 1) // 2
    costs = jax.tree.map(lambda x: x[:-1], records)
    return CentralSolution(
        ts=np.arange(steps + 1) * float(flow.lr),
        thetas=states_like(params, unravel, records.theta),
        loss=records.loss,
        prediction=records.prediction,
        eigenvalues=records.eigenvalues,
        S=records.S,
        ceiling=records.ceiling,
        hvps=costs.hvps,
        sdcp_iterations=costs.sdcp_iterations,
        sdcp_residual=costs.sdcp_residual,
        converged=costs.converged,
        gradients_per_step=flow.substeps,
        d3_per_step=m,
        status=_status(records, theta0.shape[0]),
    )


def _nan_rows_to(records: StepRecord, rows: int) -> StepRecord:
    """``records`` filled up to ``rows`` rows with NaN (False for flags): the rows after a non-finite state."""

    def pad(x):
        missing = rows - x.shape[0]
        if missing <= 0:
            return x
        shape = (missing,) + x.shape[1:]
        return np.concatenate([x, np.zeros(shape, bool) if x.dtype == bool else np.full(shape, np.nan)])

    return jax.tree.map(pad, records)
