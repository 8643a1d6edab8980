r"""Solve a flow over n GD steps: its state at t = n h, n = 0..steps.

.. math:: \theta(t) = \theta_0 + \int_0^t f(\theta(s), s)\, ds, \qquad t_n = n h

Adaptive Runge-Kutta (diffrax; Dopri8 by default, Tsit5 or any diffrax solver
on request) with a PID step-size controller. A flow whose state may turn
complex (the Principal Flow) is integrated as a real pair (Re theta, Im theta):
diffrax's complex support is experimental, and the pair makes the error
control see both parts. Divergence or a stalled solve is reported in the
result (``status``), never raised.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.holomorphic import check_holomorphic
from gdflows.validation import check_flat, check_loss_at, check_lr, check_steps, is_integer_in


@dataclasses.dataclass(frozen=True)
class FlowSolution:
    """A flow solved at t = n h.

    thetas: (steps + 1, D), complex when the state went complex.
    num_field_evals: vector-field evaluations the solver made.
    status: "ok", or why the solve stopped early ("max_steps", "nonfinite", ...);
    rows after the stop are NaN.
    """

    ts: np.ndarray
    thetas: np.ndarray
    num_field_evals: int
    num_steps: int
    num_rejected: int
    status: str

    @property
    def is_complex(self) -> bool:
        return bool(np.iscomplexobj(self.thetas) and np.any(np.imag(self.thetas) != 0))


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
    field: Callable
    pair: bool

    def __call__(self, t, y, args):
        if not self.pair:
            return self.field(y, t)
        out = self.field(y[0] + 1j * y[1], t)
        return jnp.real(out).astype(y[0].dtype), jnp.imag(out).astype(y[0].dtype)


@eqx.filter_jit
def _solve(field, y0, ts, step_ts, rtol, atol, solver, max_steps, pair):
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_Term(field, pair)),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, step_ts=step_ts),
        max_steps=max_steps,
        throw=False,
    )


def _status(sol, ys) -> str:
    if sol.result == diffrax.RESULTS.successful:
        return "ok"
    reason = "max_steps" if sol.result == diffrax.RESULTS.max_steps_reached else "solver_failed"
    return f"{reason}+nonfinite" if not np.all(np.isfinite(ys)) else reason


def _check_field(field, theta0):
    loss = getattr(field, "loss", None)
    if loss is None:
        return
    check_loss_at(loss, theta0)
    if getattr(field, "complex_state", False):
        check_holomorphic(loss, theta0)


def integrate(
    field: Callable,
    theta0,
    lr,
    steps: int,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    solver: Any = None,
    max_steps: int = 100_000,
    substeps: int = 1,
) -> FlowSolution:
    """Integrate ``field`` from ``theta0`` and return its state at t = n*lr.

    The field is a gdflows flow or any ``f(theta, t)`` on flat vectors. A
    complex state is used when the field declares ``complex_state`` (the PF)
    or ``theta0`` is complex; its loss is then checked to be holomorphic.
    A field with a ``jump`` method (the PF at h lambda = 1) is jumped at t = 0+.
    ``substeps`` > 1 also saves k*lr/substeps in between (for plotting paths);
    rows ``::substeps`` are then the states at the GD steps.
    """
    h = check_lr(lr)
    steps = check_steps(steps)
    theta0 = check_flat(theta0)
    if not is_integer_in(substeps, 1):
        raise GDFlowsError(f"substeps must be an integer >= 1, got {substeps!r}")
    if rtol <= 0 or atol <= 0:
        raise GDFlowsError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    _check_field(field, theta0)
    solver = _default_solver(rtol) if solver is None else solver
    pair = bool(getattr(field, "complex_state", False) or jnp.iscomplexobj(theta0))
    start = field.jump(theta0) if hasattr(field, "jump") and steps > 0 else theta0
    real_dtype = jnp.real(start).dtype
    y0 = (jnp.real(start), jnp.imag(start).astype(real_dtype)) if pair else start
    ts = jnp.arange(steps * substeps + 1, dtype=real_dtype) * (h / substeps)
    if steps == 0:
        return FlowSolution(np.asarray(ts), np.asarray(theta0)[None], 0, 0, 0, "ok")
    tol = jnp.asarray(rtol, real_dtype), jnp.asarray(atol, real_dtype)
    # Steps land on every t = n h, so GD-step values are solver states, not interpolants.
    sol = _solve(field, y0, ts, ts[::substeps], *tol, solver, max_steps, pair)
    ys = sol.ys[0] + 1j * sol.ys[1] if pair else sol.ys
    ys = np.asarray(ys).copy()
    ys[0] = np.asarray(theta0)
    per_step, initial = _evals_per_step(solver)
    n_steps = int(sol.stats["num_steps"])
    return FlowSolution(
        ts=np.asarray(ts),
        thetas=ys,
        num_field_evals=initial + per_step * n_steps,
        num_steps=n_steps,
        num_rejected=int(sol.stats["num_rejected_steps"]),
        status=_status(sol, ys),
    )
