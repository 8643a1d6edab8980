r"""Solve a flow over n GD steps: its state at t = n h, n = 0..steps.

.. math:: \theta(t) = \theta_0 + \int_0^t f(\theta(s), s)\, ds, \qquad t_n = n h

Adaptive Runge-Kutta (diffrax; Dopri8 by default at tight tolerances, Tsit5
otherwise, or any explicit diffrax solver on request) with a PID step-size
controller whose steps land on every t = n h. A flow whose state may turn
complex (the Principal Flow) is integrated as a real pair (Re theta, Im theta):
diffrax's complex support is experimental, and the pair makes the error
control see both parts. Divergence, a stalled solve, or a field that missed its
own accuracy (the Krylov PF) is reported in the result's :class:`Status`,
never raised.

With ``displacement=True`` the solver's state is :math:`\theta(t) - \theta_0` (the field evaluated at
:math:`\theta_0` plus it), so rtol and atol measure the error against how far the flow moves, not against
|theta|: the error norm is an RMS over all D components relative to each, so at network scale an error along
the few stiff directions that set a step's loss change is diluted by sqrt(D) and by |theta_i| >> h |g_i|.

Unconverged fields are counted by an extra state component u with
du/dt = 1 where the field's :class:`~gdflows.flows.FieldInfo` says it did not
converge (0 elsewhere), left out of the error norm so it never steers the step
size: u(T) > 0 means some evaluation along the solve missed its tolerance.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix

from gdflows.errors import GDFlowsError
from gdflows.flows.base import Flow, VectorField
from gdflows.holomorphic import check_holomorphic
from gdflows.params import is_flat, ravel, states_like, with_flat_loss
from gdflows.status import Status
from gdflows.validation import check_loss_at, check_lr, check_steps, is_integer_in

DEFAULT_TOLERANCES = {"float64": (1e-12, 1e-14), "float32": (1e-5, 1e-6)}  # (rtol, atol) by real dtype


@dataclasses.dataclass(frozen=True)
class FlowSolution:
    """A flow solved at t = n h.

    thetas: (steps + 1, D) for a flat theta0, or a pytree like theta0 whose
    leaves carry a leading (steps + 1) axis; complex when the state went complex.
    num_field_evals: vector-field evaluations the solver made.
    status: a :class:`Status`; ``status.message`` explains it.
    unconverged_time: flow time over which field evaluations missed their tolerance.
    """

    ts: np.ndarray
    thetas: Any
    num_field_evals: int
    num_steps: int
    num_rejected: int
    status: Status
    unconverged_time: float = 0.0

    @property
    def is_complex(self) -> bool:
        leaves = jax.tree_util.tree_leaves(self.thetas)
        return any(np.iscomplexobj(x) and np.any(np.imag(x) != 0) for x in leaves)


def _evals_per_step(solver) -> tuple[int, int]:
    """(evaluations per attempted step, evaluations at the start) of an explicit RK solver."""
    tableau = getattr(solver, "tableau", None)
    if tableau is None:
        raise GDFlowsError(f"cannot count field evaluations for {type(solver).__name__}; use an explicit RK solver")
    stages = len(tableau.c) + 1
    return (stages - 1, 1) if tableau.fsal else (stages, 0)


def _default_solver(rtol: float):
    return diffrax.Dopri8() if rtol < 1e-7 else diffrax.Tsit5()


class _Term(eqx.Module):
    flow: Flow
    pair: bool
    origin: jax.Array  # the state is theta - origin (0 unless integrating the displacement)

    def __call__(self, t, y, args):
        state, _ = y
        theta = self.origin + (state[0] + 1j * state[1] if self.pair else state)
        field, info = self.flow.evaluate(theta)
        if self.pair:
            field = (jnp.real(field).astype(state[0].dtype), jnp.imag(field).astype(state[0].dtype))
        return field, jnp.where(info.converged, 0.0, 1.0).astype(jnp.real(theta).dtype)


def _state_norm(y):
    return optimistix.rms_norm(y[0])


@eqx.filter_jit
def _solve(flow, y0, ts, step_ts, rtol, atol, solver, max_steps, pair, dt0, origin):
    controller = diffrax.PIDController(rtol=rtol, atol=atol, step_ts=step_ts, norm=_state_norm)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_Term(flow, pair, origin)),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=dt0,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
    )


def _status(sol, ys, unconverged: float) -> Status:
    """The solver's verdict first (a stopped solve leaves its unreached rows NaN), then the state's, then the
    field's."""
    if sol.result == diffrax.RESULTS.max_steps_reached:
        return Status.MAX_STEPS
    if sol.result != diffrax.RESULTS.successful:
        return Status.SOLVER_FAILED
    if not np.all(np.isfinite(ys)):
        return Status.NONFINITE
    return Status.FIELD_NOT_CONVERGED if unconverged > 0 else Status.OK


def _as_flow(field, loss_unravel) -> Flow:
    """The flow, over flat vectors: a plain function is wrapped; a flow over a
    pytree loss gets ``loss(unravel(theta))``."""
    if not isinstance(field, Flow):
        if not callable(field):
            raise GDFlowsError(f"integrate needs a flow (gdflows.flows) or a function f(theta, t), got {field!r}")
        return VectorField(field)
    if loss_unravel is None or field.loss is None:
        return field
    return with_flat_loss(field, loss_unravel)


def _step(flow: Flow, lr) -> float:
    """h: the flow's own, or ``lr`` (required where the flow has none); a mismatch is refused."""
    if flow.lr is None:
        if lr is None:
            raise GDFlowsError("this flow has no learning rate of its own: pass lr= (flow time t = n * lr)")
        return check_lr(lr)
    own = float(flow.lr)
    if lr is None:
        return own
    h = check_lr(lr)
    if abs(h - own) > 4 * float(jnp.finfo(jnp.asarray(flow.lr).dtype).eps) * own:
        raise GDFlowsError(
            f"lr = {h:g} differs from the flow's own learning rate {own:g}; the flow models GD at its own "
            f"rate: drop lr= or build the flow with lr={h:g}"
        )
    return own


def _tolerances(rtol, atol, real_dtype) -> tuple[float, float]:
    name = "float64" if real_dtype == jnp.float64 else "float32"
    d_rtol, d_atol = DEFAULT_TOLERANCES[name]
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if not (rtol > 0 and atol > 0):
        raise GDFlowsError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    floor = 10 * float(jnp.finfo(real_dtype).eps)
    if rtol < floor:
        raise GDFlowsError(
            f"rtol = {rtol:g} is below 10 * machine epsilon of {jnp.dtype(real_dtype).name} ({floor:.1e}); "
            "pass a larger rtol, or float64 parameters (jax.config.update('jax_enable_x64', True))"
        )
    return float(rtol), float(atol)


def _check_start(flow: Flow, theta0) -> None:
    if flow.loss is None:
        return
    check_loss_at(flow.loss, theta0)
    if flow.complex_state:
        check_holomorphic(flow.loss, theta0)


def integrate(
    field,
    theta0,
    lr=None,
    steps: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    solver: Any = None,
    max_steps: int = 100_000,
    substeps: int = 1,
    first_step: float | None = None,
    displacement: bool = False,
) -> FlowSolution:
    """Integrate ``field`` from ``theta0`` and return its state at t = n h, n = 0..steps.

    ``field``: a flow from :mod:`gdflows.flows` (its own ``lr`` sets h; a
    different ``lr`` is refused) or any ``f(theta, t)`` on flat vectors
    (then ``lr`` is required). ``theta0``: a flat vector or a pytree of
    parameters (the flow's loss then takes that pytree); states come back in
    the same structure. A complex state is used when the flow declares
    ``complex_state`` (the PF) or ``theta0`` is complex; its loss is then
    checked to be holomorphic. The flow's ``jump`` is applied at t = 0+.
    ``rtol``/``atol`` default to (1e-12, 1e-14) in float64 and (1e-5, 1e-6)
    in float32. ``substeps`` > 1 also saves k h/substeps in between (for
    plotting paths); rows ``::substeps`` are then the states at the GD steps.
    ``first_step``: the solver's first trial step, in (0, h / substeps] (None: diffrax's estimate, which
    starts well below h and takes a few steps to grow); its error estimate accepts or shrinks it like any
    other step, so the tolerances hold either way. ``displacement``: solve for theta(t) - theta0, so that the
    tolerances are relative to how far the flow moves (see the module; pass an ``atol`` on that scale too).
    """
    if steps is None:
        raise GDFlowsError("pass steps=, the number of GD steps to solve over")
    steps = check_steps(steps)
    theta, unravel = ravel(theta0)
    flow = _as_flow(field, None if is_flat(theta0) else unravel)
    h = _step(flow, lr)
    if not is_integer_in(substeps, 1):
        raise GDFlowsError(f"substeps must be an integer >= 1, got {substeps!r}")
    if first_step is not None and not 0 < first_step <= h / substeps * (1 + 1e-6):
        raise GDFlowsError(f"first_step must be in (0, h / substeps = {h / substeps:g}], got {first_step!r}")
    real_dtype = jnp.real(theta).dtype
    rtol, atol = _tolerances(rtol, atol, real_dtype)
    _check_start(flow, theta)
    solver = _default_solver(rtol) if solver is None else solver
    pair = bool(flow.complex_state or jnp.iscomplexobj(theta))
    ts = jnp.arange(steps * substeps + 1, dtype=real_dtype) * (h / substeps)
    if steps == 0:
        return FlowSolution(np.asarray(ts), states_like(theta0, unravel, np.asarray(theta)[None]), 0, 0, 0, Status.OK)
    origin = theta if displacement else jnp.zeros_like(theta)
    start = flow.jump(theta) - origin
    state = (jnp.real(start), jnp.imag(start).astype(real_dtype)) if pair else start
    y0 = (state, jnp.zeros((), real_dtype))
    # Steps land on every t = n h, so GD-step values are solver states, not interpolants.
    sol = _solve(
        flow,
        y0,
        ts,
        ts[::substeps],
        jnp.asarray(rtol, real_dtype),
        jnp.asarray(atol, real_dtype),
        solver,
        max_steps,
        pair,
        None if first_step is None else jnp.asarray(min(first_step, h / substeps), real_dtype),
        origin,
    )
    states, unconverged = sol.ys
    ys = origin + (states[0] + 1j * states[1] if pair else states)
    ys = np.asarray(ys).copy()
    ys[0] = np.asarray(theta)
    reached = np.isfinite(np.asarray(sol.ts))  # diffrax marks the saves after a stop with t = inf
    ys[~reached] = np.nan
    per_step, initial = _evals_per_step(solver)
    n_steps = int(sol.stats["num_steps"])
    unconverged_time = float(np.max(np.asarray(unconverged)[reached]))
    return FlowSolution(
        ts=np.asarray(ts),
        thetas=states_like(theta0, unravel, ys),
        num_field_evals=initial + per_step * n_steps,
        num_steps=n_steps,
        num_rejected=int(sol.stats["num_rejected_steps"]),
        status=_status(sol, ys, unconverged_time),
        unconverged_time=unconverged_time,
    )
