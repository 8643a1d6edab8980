"""`gdflows track`: which flow follows GD on a network, before and at the edge of stability.

From GD iterates theta_s of a full-batch run (a small tanh MLP on the bundled
MNIST subset), each flow F is solved from theta_s for m steps and compared with
GD: ``d_F(n) = |theta_F(n h; theta_s) - theta_{s+n}|`` (the central-flow
paper's metric), n = 0..m; d_F(1) is the one-step error. The central flow is
solved by its own fixed-step solver (:func:`gdflows.central_solver.solve_central`).

Starts are labelled by what GD does there, not by h*lambda_0 alone: "at EoS"
when GD's loss rises within m steps either side of the start (it oscillates;
:func:`gdflows.experiments.central.rises`), otherwise "before EoS" (h*lambda_0 < 2)
or "above 2/h, not oscillating" (h*lambda_0 >= 2 while GD still follows
gradient flow: its oscillation has not grown yet).
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np

from gdflows.central_solver import solve_central
from gdflows.curvature.eigen import hessian_eigenpairs
from gdflows.experiments.central import rises
from gdflows.experiments.configs import TrackConfig
from gdflows.experiments.flow_comparison import distance_rows, solve_flows
from gdflows.experiments.network_setup import network_run
from gdflows.experiments.report import plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.progress import track as progress
from gdflows.flows.central import central
from gdflows.gd import gd

CENTRAL_K = 3  # tracked directions of the central flow


def sharpness(loss, theta) -> float:
    return float(hessian_eigenpairs(loss, theta, 1, tol=1e-8).values[0].real)


def phase(oscillates: bool, h_lambda0: float) -> str:
    """The label of a start: by whether GD oscillates there, then by h*lambda_0."""
    if oscillates:
        return "at EoS"
    return "above 2/h, not oscillating" if h_lambda0 >= 2 else "before EoS"


def track_start(loss, gd_thetas, lr, start, horizon, names, **solve_kw) -> tuple[list[dict], list[dict]]:
    """(distance rows, sharpness rows) for every flow solved from GD iterate ``start``.

    Sharpness rows: h*lambda_0 along GD and along the central flow's own trajectory.
    """
    theta_s = gd_thetas[start]
    h_lam = lr * sharpness(loss, theta_s)
    losses = np.asarray(jax.vmap(loss)(gd_thetas[max(0, start - horizon) : start + horizon + 1]))
    label = phase(bool(np.any(rises(losses))), h_lam)
    sols = solve_flows(loss, theta_s, lr, horizon, [n for n in names if n != "central"], **solve_kw)
    if "central" in names:
        sols["central"] = solve_central(central(loss, lr, k=min(CENTRAL_K, theta_s.size)), theta_s, horizon)
    dist = distance_rows(gd_thetas[start : start + horizon + 1], sols, start=start, h_lambda0=h_lam, phase=label)
    sharp = []
    for n in range(horizon + 1):
        row = {"start": start, "phase": label, "n": n, "gd_h_lambda0": lr * sharpness(loss, gd_thetas[start + n])}
        if "central" in sols and np.isfinite(sols["central"].eigenvalues[n, 0]):
            row["central_h_lambda0"] = lr * float(sols["central"].eigenvalues[n, 0])
        sharp.append(row)
    return dist, sharp


def central_deviation(sharp_rows, start) -> float:
    """max over n >= 1 of |h lambda_0 - 2| / 2 along the central flow from ``start``."""
    vals = [
        abs(r["central_h_lambda0"] - 2) / 2
        for r in sharp_rows
        if r["start"] == start and r["n"] >= 1 and "central_h_lambda0" in r
    ]
    return max(vals) if vals else float("nan")


def summarize(rows) -> list[dict]:
    """Per (start, flow): one-step error, distance after m steps, rank by that distance."""
    out = []
    for start in dict.fromkeys(r["start"] for r in rows):
        sel = [r for r in rows if r["start"] == start]
        m = max(r["n"] for r in sel)
        finals = {r["flow"]: r for r in sel if r["n"] == m}
        ones = {r["flow"]: r["distance"] for r in sel if r["n"] == 1}
        order = sorted(finals, key=lambda f: (not math.isfinite(finals[f]["distance"]), finals[f]["distance"]))
        for rank, flow in enumerate(order, 1):
            r = finals[flow]
            out.append(
                {
                    "start": start,
                    "phase": r["phase"],
                    "h_lambda0": r["h_lambda0"],
                    "flow": flow,
                    "one_step_error": ones[flow],
                    f"distance_after_{m}": r["distance"],
                    "rank": rank,
                    "status": r["status"],
                }
            )
    return out


def _central_text(sharp_rows, starts) -> str:
    lines = [
        "Central flow: h*lambda_0 along its own trajectory (n = 1..m) beside GD's over the same steps, and the "
        "largest |h*lambda_0 - 2| / 2 on the flow. The flow holds lambda_0 at 2/h, or, from a start above 2/h, "
        "at most at its start value (docs/theory.md, section 9):",
        "",
    ]
    for s in starts:
        rows = [r for r in sharp_rows if r["start"] == s]
        gd_vals = [r["gd_h_lambda0"] for r in rows]
        cf_vals = [r["central_h_lambda0"] for r in rows if r["n"] >= 1 and "central_h_lambda0" in r]
        cf_range = f"[{min(cf_vals):.3f}, {max(cf_vals):.3f}]" if cf_vals else "n/a"
        lines.append(
            f"- start {s} ({rows[0]['phase']}): central {cf_range}, deviation {central_deviation(sharp_rows, s):.2e}; "
            f"GD [{min(gd_vals):.3f}, {max(gd_vals):.3f}]"
        )
    return "\n".join(lines)


def run(cfg: TrackConfig) -> Path:
    """``gdflows track``: GD, then every flow from each start, the tables, figures and REPORT.md into ``cfg.out``."""
    folder, prob = network_run(cfg)
    if folder is None:
        return Path(cfg.out)
    thetas = np.asarray(gd(prob.loss, prob.theta0, cfg.lr, cfg.train_steps))
    rows, sharp = [], []
    for start in progress(cfg.starts, "track: flows from GD iterates"):
        dist, sh = track_start(prob.loss, thetas, cfg.lr, start, cfg.horizon, cfg.flows, rtol=cfg.rtol, atol=cfg.atol)
        rows, sharp = rows + dist, sharp + sh
        folder.write_table("track_distances", rows)
        folder.write_table("track_sharpness", sharp)
    summary = summarize(rows)
    folder.write_table("track_summary", summary)
    figs = [
        plots.distance_curves(
            folder.figure_path(f"track_start{s}.png"),
            [r for r in rows if r["start"] == s],
            f"Flows from GD step {s}, h = {cfg.lr}",
        )
        for s in cfg.starts
    ]
    cols = [
        "start",
        "phase",
        "h_lambda0",
        "flow",
        "one_step_error",
        f"distance_after_{cfg.horizon}",
        "rank",
        "status",
    ]
    fmt = {"h_lambda0": "{:.3f}", "one_step_error": "{:.3e}", f"distance_after_{cfg.horizon}": "{:.3e}"}
    text = (
        f"# gdflows track\n\n{cfg.net.activation} {cfg.net.model} (D = {prob.theta0.size}) on {cfg.net.n_train} "
        f"{cfg.net.dataset} images, "
        f"full-batch GD at h = {cfg.lr}. Distance |theta_flow(n h) - theta_(s+n)| from each start s.\n\n"
        + markdown_table(summary, cols, fmt)
        + "\n\n"
        + _central_text(sharp, cfg.starts)
        + "\n\n"
        + "\n".join(f"![{f.stem}](figures/{f.name})" for f in figs)
        + "\n"
    )
    folder.write_text("REPORT.md", text)
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path
