"""Toy landscapes where the flows part ways (docs/theory.md, sections 3 and 10).

(a) sharp dip next to a broad bowl: GD (h lambda_sharp > 2) is thrown out of the
    sharp minimum, NGF and IGR stay; does the PF follow GD out? GD escapes at
    the first step past the barrier between dip and bowl
    (:func:`basin_edge`); the verdict (:func:`dip_verdict`) asks whether the
    PF is still within 0.01 of GD there.
(b) saddle: escape along the negative-curvature direction; GD escapes with
    factor 1 + h|lambda| per step, slower than NGF (rate |lambda|); the PF's
    sc in (-1, 0) reproduces that.
(c) one-step error orders on a smooth non-quadratic loss: the slope of
    log |theta_flow(h) - theta_1| against log h (expected NGF 2, IGR 3,
    third-order 4, PF 3, PF+NP 4).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature import hessian
from gdflows.experiments.configs import ToysConfig
from gdflows.experiments.flow_comparison import compare_to_gd, distance_rows, path_rows, solve_flows
from gdflows.experiments.report import plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.experiments.verdicts import Verdict, follows_through_escape
from gdflows.gd import gd
from gdflows.problems.toys import Saddle, SharpDip, SmoothCubic

__all__ = ["ToysConfig", "run", "toys_section"]

ORDER_FLOWS = ("NGF", "IGR", "third-order", "PF", "PF+NP")
EXPECTED_ORDERS = {"NGF": 2, "IGR": 3, "third-order": 4, "PF": 3, "PF+NP": 4}
ORDER_TOL = 0.15  # a fitted slope within this of the expected order matches it
TOY_FLOWS = ("PF", "PF+NP", "NGF", "IGR")
DIP_TOL = 0.01  # "follows GD" on the sharp dip: within 0.01 of GD (2% of the dip's width s = 0.5)


def local_minimum(loss, x0, lr=1e-2, iters=2000):
    """A minimum near x0 by plain GD with a small step (for placing starts)."""
    return gd(loss, x0, lr, iters)[-1]


def sharp_minimum(loss: SharpDip) -> tuple[jax.Array, float]:
    """The dip's minimum x_sharp (shape (1,)) and its curvature lambda_sharp = E''(x_sharp)."""
    x_min = local_minimum(loss, jnp.array([loss.x1]))
    return x_min, float(hessian(loss, x_min)[0, 0])


def basin_edge(loss: SharpDip, x_sharp: float, points: int = 4001) -> float:
    """The top of the barrier between the bowl's minimum (x = 0) and the dip's: argmax of E on [0, x_sharp]."""
    xs = np.linspace(0.0, x_sharp, points)
    return float(xs[np.argmax(np.asarray(jax.vmap(lambda x: loss(x[None]))(jnp.asarray(xs))))])


def escape_step(xs, edge: float) -> int | None:
    """First GD step n with x_n < ``edge`` (out of the dip, into the bowl), or None."""
    out = np.flatnonzero(np.asarray(xs) < edge)
    return int(out[0]) if out.size else None


def sharp_dip_tables(h_lambda=3.5, steps=12, substeps=8, **solve_kw):
    """(distance rows, path rows, facts) for GD and the flows from next to the sharp minimum."""
    loss = SharpDip()
    x_min, lam = sharp_minimum(loss)
    lr = h_lambda / lam
    theta0 = x_min + 0.01
    solve_kw.setdefault("max_steps", 20_000)
    gd_thetas, sols = compare_to_gd(loss, theta0, lr, steps, TOY_FLOWS, substeps, **solve_kw)
    edge = basin_edge(loss, float(x_min[0]))
    facts = {
        "x_sharp": float(x_min[0]),
        "lambda_sharp": lam,
        "lr": lr,
        "h_lambda": h_lambda,
        "steps": steps,
        "gd_final": float(gd_thetas[-1, 0]),
        "basin_edge": edge,
        "gd_escape_step": escape_step(gd_thetas[:, 0], edge),
    }
    return (
        distance_rows(gd_thetas, sols, substeps, toy="sharp_dip"),
        path_rows(sols, gd_thetas, lr, substeps, toy="sharp_dip"),
        facts,
    )


def escape_time(ts, ys, threshold):
    """First t with |y(t)| > threshold (linear interpolation), or inf."""
    above = np.nonzero(np.abs(ys) > threshold)[0]
    if above.size == 0:
        return float("inf")
    i = above[0]
    if i == 0:
        return float(ts[0])
    y0, y1 = np.abs(ys[i - 1]), np.abs(ys[i])
    return float(ts[i - 1] + (threshold - y0) / (y1 - y0) * (ts[i] - ts[i - 1]))


def saddle_tables(lr=0.25, steps=40, substeps=8, threshold=0.5, **solve_kw):
    """Escape from the saddle at the origin: distances, paths and escape times."""
    loss = Saddle()
    theta0 = jnp.array([1.0, 1e-3])
    gd_thetas, sols = compare_to_gd(loss, theta0, lr, steps, TOY_FLOWS, substeps, **solve_kw)
    times = [{"flow": "GD", "escape_time": escape_time(np.arange(steps + 1) * lr, gd_thetas[:, 1], threshold)}]
    times += [
        {"flow": n, "escape_time": escape_time(s.ts, np.real(s.thetas[:, 1]), threshold)} for n, s in sols.items()
    ]
    return (
        distance_rows(gd_thetas, sols, substeps, toy="saddle"),
        path_rows(sols, gd_thetas, lr, substeps, toy="saddle"),
        times,
    )


ORDER_HS = tuple(np.geomspace(0.01, 0.08, 8))


def one_step_errors(hs=ORDER_HS, names=ORDER_FLOWS, rtol=1e-13, atol=1e-16):
    """|theta_flow(h) - (theta_0 - h g)| for each flow and h on the smooth cubic loss."""
    loss = SmoothCubic()
    theta0 = jnp.array([0.6, -0.4])
    g = jax.grad(loss)(theta0)
    rows = []
    for h in track(hs, "error orders"):
        sols = solve_flows(loss, theta0, float(h), 1, names, rtol=rtol, atol=atol)
        gd1 = np.asarray(theta0 - h * g)
        rows += [{"flow": n, "h": float(h), "error": float(np.linalg.norm(s.thetas[1] - gd1))} for n, s in sols.items()]
    return rows


def fitted_slopes(rows) -> dict[str, float]:
    """Least-squares slope of log(error) against log(h), per flow."""
    out = {}
    for name in dict.fromkeys(r["flow"] for r in rows):
        sel = [r for r in rows if r["flow"] == name]
        out[name] = float(np.polyfit(np.log([r["h"] for r in sel]), np.log([r["error"] for r in sel]), 1)[0])
    return out


def toys_section(run: Run, quick: bool = False) -> str:
    """Run (a), (b), (c), write their tables and figures, return the report section."""
    dip_dist, dip_paths, dip = sharp_dip_tables(steps=8 if quick else 12)
    sad_dist, sad_paths, times = saddle_tables(steps=30 if quick else 40)
    errors = one_step_errors(hs=tuple(np.geomspace(0.01, 0.08, 5 if quick else 8)))
    slopes = fitted_slopes(errors)
    for name, rows in [
        ("sharp_dip_distances", dip_dist),
        ("sharp_dip_paths", dip_paths),
        ("saddle_distances", sad_dist),
        ("saddle_paths", sad_paths),
        ("saddle_escape", times),
        ("error_orders", errors),
    ]:
        run.write_table(name, rows)
    slope_rows = [
        {"flow": n, "slope": s, "expected": EXPECTED_ORDERS[n], "ok": abs(s - EXPECTED_ORDERS[n]) <= ORDER_TOL}
        for n, s in slopes.items()
    ]
    run.write_table("error_order_slopes", slope_rows)
    plots.trajectories(
        run.figure_path("sharp_dip.png"), dip_paths, 0, f"Sharp dip, h*lambda = {dip['h_lambda']}: Re x(t)", "x"
    )
    plots.trajectories(run.figure_path("saddle.png"), sad_paths, 1, "Saddle escape: Re y(t)", "y")
    plots.error_orders(run.figure_path("error_orders.png"), errors, slopes)
    return _toys_markdown(dip, dip_dist, times, slope_rows)


def _final_status(dist_rows):
    last = {}
    for r in dist_rows:
        last[r["flow"]] = r
    return [
        {"flow": f, "distance_at_end": r["distance"], "steps": r["n"], "status": r["status"]} for f, r in last.items()
    ]


def tracked_steps(dist_rows, tol) -> dict[str, int]:
    """Per flow: the last GD step n up to which the flow stays within ``tol`` of GD at every step."""
    out = {}
    for r in dist_rows:
        last = out.setdefault(r["flow"], -1)
        if r["n"] == last + 1 and np.isfinite(r["distance"]) and r["distance"] <= tol:
            out[r["flow"]] = r["n"]
    return out


def dip_verdict(dip_dist, facts, flow: str = "PF") -> Verdict:
    """Does ``flow`` follow GD out of the sharp minimum (within :data:`DIP_TOL` past GD's escape step)?"""
    return follows_through_escape(tracked_steps(dip_dist, DIP_TOL)[flow], facts["gd_escape_step"], facts["steps"])


def _dip_prose(dip, dip_dist) -> str:
    """What the sharp-dip run showed, from its verdict and the PF's solver status."""
    verdict = dip_verdict(dip_dist, dip)
    tracked = tracked_steps(dip_dist, DIP_TOL)["PF"]
    escape = dip["gd_escape_step"]
    if escape is None:
        left = f"GD stays in the dip for all {dip['steps']} steps"
    else:
        left = f"GD leaves the dip (crosses the barrier at x = {dip['basin_edge']:.3f}) at step {escape}"
    status = next(r["status"] for r in dip_dist if r["flow"] == "PF")
    stop = "" if status == "ok" else f" The PF's solve ended with status `{status}`, so its later rows are NaN."
    return (
        f"{left}; the PF stays within {DIP_TOL:g} of GD up to step {tracked}. Does the PF follow GD out of the "
        f"sharp minimum? **{verdict}**.{stop}"
    )


def _toys_markdown(dip, dip_dist, times, slope_rows) -> str:
    tracked = tracked_steps(dip_dist, DIP_TOL)
    dip_rows = [{**row, "steps_within_0.01": tracked[row["flow"]]} for row in _final_status(dip_dist)]
    return (
        "## Toy landscapes\n\n"
        f"### (a) Sharp dip next to a broad bowl\n\nSharp minimum at x = {dip['x_sharp']:.4f}, lambda = "
        f"{dip['lambda_sharp']:.3f}, h = {dip['lr']:.4f} (h*lambda = {dip['h_lambda']}); the broad bowl's minimum "
        f"is at x = 0. GD ends at x = {dip['gd_final']:.4f}. `steps_within_0.01`: the last GD step up to which the "
        f"flow stays within 0.01 of GD. {_dip_prose(dip, dip_dist)}\n\n"
        + markdown_table(
            dip_rows, ["flow", "steps", "distance_at_end", "steps_within_0.01", "status"], {"distance_at_end": "{:.3e}"}
        )
        + "\n\n![sharp dip](figures/sharp_dip.png)\n\n"
        "### (b) Saddle E = x^2/2 - y^2/2 + y^4/4 from (1, 1e-3)\n\nTime at which |Re y| first exceeds 0.5:\n\n"
        + markdown_table(times, ["flow", "escape_time"], {"escape_time": "{:.4f}"})
        + "\n\n![saddle](figures/saddle.png)\n\n"
        "### (c) One-step error orders on a smooth cubic loss\n\n"
        + markdown_table(slope_rows, ["flow", "slope", "expected", "ok"], {"slope": "{:.3f}"})
        + "\n\n![error orders](figures/error_orders.png)\n"
    )


def run(cfg: ToysConfig) -> Path:
    """``gdflows toys``: the three toy sections and REPORT.md into ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    folder.create()
    folder.write_text("REPORT.md", "# gdflows: toy landscapes\n\n" + toys_section(folder, cfg.quick))
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path
