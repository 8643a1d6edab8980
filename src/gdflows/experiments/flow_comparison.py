"""Which flow follows GD: solve several flows from one start and measure |flow - GD|.

For each flow F and GD step n: ``distance = |theta_F(n h) - theta_n|`` (Euclidean;
complex flow states count their imaginary part, since GD is real).
"""

from __future__ import annotations

from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature.operator import hessian_operator
from gdflows.flows import FLOWS, make_flow
from gdflows.gd import gd
from gdflows.integrate import FlowSolution, integrate
from gdflows.status import Status


def solve_flows(loss, theta0, lr, steps, names: Iterable[str], substeps=1, **solve_kw) -> dict[str, FlowSolution]:
    """Solve each named flow (keys of :data:`gdflows.flows.FLOWS`) from theta0 over ``steps`` GD steps."""
    unknown = [n for n in names if n not in FLOWS]
    if unknown:
        raise ValueError(f"unknown flow(s) {unknown}; choose from {sorted(FLOWS)}")
    return {n: integrate(make_flow(n, loss, lr), theta0, lr, steps, substeps=substeps, **solve_kw) for n in names}


@eqx.filter_jit
def _quadratic_scan(loss, theta0, lr, steps):
    op = hessian_operator(loss, theta0)

    def step(delta, _):
        nxt = delta - lr * (op.gradient + op.matvec(delta))
        return nxt, nxt

    _, deltas = jax.lax.scan(step, jnp.zeros_like(theta0), None, length=steps)
    return theta0 + jnp.concatenate([jnp.zeros_like(theta0)[None], deltas])


def quadratic_model(loss, theta0, lr, steps: int) -> FlowSolution:
    r"""GD on E's second-order Taylor model at theta0, at t = n h, n = 0..steps (flat theta0):

    .. math:: \delta_{n+1} = \delta_n - h\,(g + H \delta_n), \qquad \theta_n = \theta_0 + \delta_n,

    g and H at theta0, one HVP per step. It equals GD when E is quadratic (where the PF does too), and
    its first step is GD's for every E."""
    theta0 = jnp.asarray(theta0)
    thetas = np.asarray(_quadratic_scan(loss, theta0, jnp.asarray(lr, theta0.dtype), steps))
    status = Status.OK if np.all(np.isfinite(thetas)) else Status.NONFINITE
    return FlowSolution(np.arange(steps + 1) * lr, thetas, steps, steps, 0, status)


def distance_rows(gd_thetas, solutions: dict[str, FlowSolution], substeps=1, **tags) -> list[dict]:
    """One row per (flow, n): the distance to GD and the flow's solver status."""
    gd_thetas = np.asarray(gd_thetas)
    rows = []
    for name, sol in solutions.items():
        dist = np.linalg.norm(sol.thetas[::substeps] - gd_thetas, axis=1)
        for n, d in enumerate(dist):
            rows.append(
                {
                    **tags,
                    "flow": name,
                    "n": n,
                    "distance": float(d),
                    "status": sol.status,
                    "field_evals": sol.num_field_evals,
                }
            )
    return rows


def path_rows(solutions: dict[str, FlowSolution], gd_thetas, h, substeps=1, **tags) -> list[dict]:
    """Flow states (real and imaginary parts) at t = k h / substeps, and GD's iterates."""
    rows = []
    for n, theta in enumerate(np.asarray(gd_thetas)):
        rows.append({**tags, "flow": "GD", "t": n * h, **_coords(theta)})
    for name, sol in solutions.items():
        for t, theta in zip(sol.ts, sol.thetas):
            rows.append({**tags, "flow": name, "t": float(t), **_coords(theta)})
    return rows


def _coords(theta) -> dict:
    theta = np.asarray(theta)
    out = {f"re{i}": float(np.real(v)) for i, v in enumerate(theta)}
    out.update({f"im{i}": float(np.imag(v)) for i, v in enumerate(theta)})
    return out


def compare_to_gd(loss, theta0, lr, steps, names, substeps=1, **solve_kw):
    """(GD iterates, {flow: FlowSolution}) from one start."""
    thetas = np.asarray(gd(loss, theta0, lr, steps))
    return thetas, solve_flows(loss, theta0, lr, steps, names, substeps=substeps, **solve_kw)
