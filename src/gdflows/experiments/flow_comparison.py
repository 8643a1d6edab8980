"""Which flow follows GD: solve several flows from one start and measure |flow - GD|.

For each flow F and GD step n: ``distance = |theta_F(n h) - theta_n|`` (Euclidean;
complex flow states count their imaginary part, since GD is real).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gdflows.flows import FLOWS, make_flow
from gdflows.gd import gd
from gdflows.integrate import FlowSolution, integrate


def solve_flows(loss, theta0, lr, steps, names: Iterable[str], substeps=1, **solve_kw) -> dict[str, FlowSolution]:
    """Solve each named flow (keys of :data:`gdflows.flows.FLOWS`) from theta0 over ``steps`` GD steps."""
    unknown = [n for n in names if n not in FLOWS]
    if unknown:
        raise ValueError(f"unknown flow(s) {unknown}; choose from {sorted(FLOWS)}")
    return {n: integrate(make_flow(n, loss, lr), theta0, lr, steps, substeps=substeps, **solve_kw) for n in names}


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
