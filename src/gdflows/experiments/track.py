r"""`gdflows track`: which model of GD follows it on a network, before and at the edge of stability.

From GD iterates theta_s of a full-batch run, each model M is run from theta_s for m steps and compared
with GD, absolutely (the central-flow paper's metric) and relative to how far GD has moved:

.. math::

    d_M(n) = |\theta_M(n h;\, \theta_s) - \theta_{s+n}|, \qquad
    r_M(n) = \frac{d_M(n)}{\max_{k \le n} |\theta_{s+k} - \theta_s|}, \qquad n = 0..m.

Models: the flows of :data:`gdflows.flows.FLOWS` named by ``--flows`` (the central flow by its own
fixed-step solver, :func:`gdflows.central_solver.solve_central`), and the *quadratic model*: GD on E's
second-order Taylor model at theta_s,

.. math:: \delta_{n+1} = \delta_n - h\,(g + H \delta_n), \qquad \theta_n = \theta_s + \delta_n,

one HVP per step (:func:`gdflows.experiments.flow_comparison.quadratic_model`), which the PF equals
exactly when E is quadratic: the cheapest model a flow has to beat. The flows are solved in displacement
coordinates theta - theta_s (``displacement=True`` of :func:`gdflows.integrate`), so the
solver's tolerance is relative to how far they move, not to |theta|. A model *holds for n steps* when
r_M(k) <= :data:`HOLD_TOL` for every k <= n (:func:`gdflows.experiments.toys.tracked_steps`); a solve
that stopped holds no further.

The central flow models GD's time average, not its iterates, so it is also compared with GD averaged
over its period-two oscillation, the centred filter
:math:`\bar\theta_n = (\theta_{n-1} + 2\theta_n + \theta_{n+1})/4`, which removes an oscillation
:math:`(-1)^n a` exactly and leaves a linear drift unchanged (rows ``central vs averaged GD``).

Starts are labelled by what GD does there, not by h*lambda_0 alone: "at EoS" when GD's loss rises
by more than :data:`NOISE_RTOL` of itself within m steps either side of the start (it oscillates;
:func:`gdflows.experiments.central.rises`; a float32 loss that barely moves rises by rounding alone),
otherwise "before EoS" (h*lambda_0 < 2) or "above 2/h, not oscillating" (h*lambda_0 >= 2 while GD
still follows gradient flow). The run resumes start by start: each finished start is a row of
``track_starts.csv`` (with its CPU seconds), written after its distances and sharpness rows.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import jax
import numpy as np

from gdflows.central_solver import solve_central
from gdflows.curvature.eigen import hessian_eigenpairs
from gdflows.experiments.central import rises
from gdflows.experiments.configs import TrackConfig
from gdflows.experiments.flow_comparison import distance_rows, quadratic_model, solve_flows
from gdflows.experiments.network_setup import network_run
from gdflows.experiments.report import plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.progress import track as progress
from gdflows.experiments.toys import tracked_steps
from gdflows.flows.central import central
from gdflows.gd import gd

CENTRAL_K = 3  # tracked directions of the central flow
HOLD_TOL = 0.05  # a model holds while its distance to GD is within 5% of how far GD has moved
NOISE_RTOL = 1e-6  # a loss rise below this fraction of the loss is rounding (float32), not an oscillation
QUADRATIC = "quadratic"  # the quadratic model (--flows quadratic)
AVERAGED = "vs averaged GD"  # rows "central vs averaged GD", "NGF vs averaged GD"
NUMERIC = (
    "h_lambda0",
    "distance",
    "relative",
    "loss_change",
    "gd_loss_change",
    "gd_h_lambda0",
    "central_h_lambda0",
    "cpu_s",
)


def sharpness(loss, theta, tol: float) -> float:
    return float(hessian_eigenpairs(loss, theta, 1, tol=tol).values[0].real)


def phase(oscillates: bool, h_lambda0: float) -> str:
    """The label of a start: by whether GD oscillates there, then by h*lambda_0."""
    if oscillates:
        return "at EoS"
    return "above 2/h, not oscillating" if h_lambda0 >= 2 else "before EoS"


def period_two_average(thetas) -> np.ndarray:
    """(theta_{n-1} + 2 theta_n + theta_{n+1}) / 4 for the rows n = 1..len - 2."""
    thetas = np.asarray(thetas)
    return (thetas[:-2] + 2 * thetas[1:-1] + thetas[2:]) / 4


def relative_rows(rows, gd_thetas) -> list[dict]:
    """``rows`` (one per (flow, n), n from 0) with ``relative``: the distance over max_{k<=n} |GD_k - GD_0|."""
    gd_thetas = np.asarray(gd_thetas)
    moved = np.maximum.accumulate(np.linalg.norm(gd_thetas - gd_thetas[0], axis=1))
    out = []
    for r in rows:
        m = moved[r["n"]]
        rel = r["distance"] / m if m > 0 else (0.0 if r["distance"] == 0 else math.inf)
        out.append({**r, "relative": rel})
    return out


def one_step_changes(loss, gd_path, sols) -> dict[str, float]:
    """Each model's prediction of GD's first loss change, Re E(theta_M(h)) - E(theta_s), and GD's own
    E(theta_{s+1}) - E(theta_s) (key ``"GD"``)."""
    e0 = float(loss(gd_path[0]))
    out = {name: float(np.real(loss(jax.numpy.asarray(sol.thetas[1])))) - e0 for name, sol in sols.items()}
    return {**out, "GD": float(loss(gd_path[1])) - e0}


def track_start(loss, gd_thetas, lr, start, horizon, names, tol, **solve_kw) -> tuple[list[dict], list[dict]]:
    """(distance rows, sharpness rows) for every model run from GD iterate ``start`` (>= 1; ``gd_thetas``
    must reach start + horizon + 1), eigenvalues at relative tolerance ``tol``.

    Sharpness rows: h*lambda_0 along GD and along the central flow's own trajectory. With the central
    flow, gradient flow (NGF) and the central flow are also measured against GD's period-two average.
    """
    theta_s = gd_thetas[start]
    h_lam = lr * sharpness(loss, theta_s, tol)
    losses = np.asarray(jax.vmap(loss)(gd_thetas[max(0, start - horizon) : start + horizon + 1]))
    tags = {"start": start, "h_lambda0": h_lam, "phase": phase(bool(np.any(rises(losses, NOISE_RTOL))), h_lam)}
    flows = [n for n in names if n not in ("central", QUADRATIC)]
    sols = solve_flows(loss, theta_s, lr, horizon, flows, displacement=True, **solve_kw)
    if QUADRATIC in names:
        sols[QUADRATIC] = quadratic_model(loss, theta_s, lr, horizon)
    if "central" in names:
        sols["central"] = solve_central(
            central(loss, lr, k=min(CENTRAL_K, theta_s.size), eig_tol=tol), theta_s, horizon
        )
    gd_path = gd_thetas[start : start + horizon + 1]
    dist = relative_rows(distance_rows(gd_path, sols, **tags), gd_path)
    changes = one_step_changes(loss, gd_path, sols)
    for r in dist:
        if r["n"] == 1:
            r.update(loss_change=changes[r["flow"]], gd_loss_change=changes["GD"])
    if "central" in names:
        averaged = period_two_average(gd_thetas[start - 1 : start + horizon + 2])
        versus = {f"{name} {AVERAGED}": sols[name] for name in ("central", "NGF") if name in sols}
        dist += relative_rows(distance_rows(averaged, versus, **tags), gd_path)
    sharp = [
        {"start": start, "phase": tags["phase"], "n": n, "gd_h_lambda0": lr * sharpness(loss, gd_path[n], tol)}
        for n in range(horizon + 1)
    ]
    if "central" in names:
        for row, lam in zip(sharp, sols["central"].eigenvalues[:, 0]):
            if np.isfinite(lam):
                row["central_h_lambda0"] = lr * float(lam)
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
    """Per (start, model): one-step error, distance after m steps (relative too), the steps it holds
    (:data:`HOLD_TOL`), rank by the distance after m steps."""
    out = []
    for start in dict.fromkeys(r["start"] for r in rows):
        sel = [r for r in rows if r["start"] == start]
        m = max(r["n"] for r in sel)
        finals = {r["flow"]: r for r in sel if r["n"] == m}
        ones = {r["flow"]: r for r in sel if r["n"] == 1}
        holds = tracked_steps([{**r, "distance": r.get("relative", math.nan)} for r in sel], HOLD_TOL)
        order = sorted(finals, key=lambda f: (not math.isfinite(finals[f]["distance"]), finals[f]["distance"]))
        for rank, flow in enumerate(order, 1):
            r = finals[flow]
            out.append(
                {
                    "start": start,
                    "phase": r["phase"],
                    "h_lambda0": r["h_lambda0"],
                    "flow": flow,
                    "one_step_error": ones[flow]["distance"],
                    "one_step_dE": ones[flow].get("loss_change", ""),
                    "gd_one_step_dE": ones[flow].get("gd_loss_change", ""),
                    f"distance_after_{m}": r["distance"],
                    f"relative_after_{m}": r.get("relative", math.nan),
                    "holds_steps": "" if flow.endswith(AVERAGED) else max(holds.get(flow, -1), 0),
                    "rank": rank,
                    "status": r["status"],
                }
            )
    return out


def holding_table(summary) -> list[dict]:
    """Per phase of the starts (then over all of them, phase ``all``) and model: the GD steps it holds
    (median, min, max), its median relative distance after m steps, at how many starts the sign of its first
    loss change is GD's, and how many starts."""
    models = [r for r in summary if not r["flow"].endswith(AVERAGED)]
    phases = list(dict.fromkeys(r["phase"] for r in models))
    groups = [(p, [r for r in models if r["phase"] == p]) for p in phases] + [("all", models)] * (len(phases) > 1)
    rel_key = next((k for k in (models[0] if models else {}) if k.startswith("relative_after_")), None)
    out = []
    for phase_name, sel in groups:
        block = []
        for flow in dict.fromkeys(r["flow"] for r in sel):
            rows = [r for r in sel if r["flow"] == flow]
            held = [r["holds_steps"] for r in rows]
            signs = [np.sign(r["one_step_dE"]) == np.sign(r["gd_one_step_dE"]) for r in rows]
            block.append(
                {
                    "phase": phase_name,
                    "model": flow,
                    "starts": len(rows),
                    "holds_median": float(np.median(held)),
                    "holds_min": min(held),
                    "holds_max": max(held),
                    "relative_after_median": float(np.median([r[rel_key] for r in rows])),
                    "sign_right": int(sum(signs)),
                }
            )
        out += sorted(block, key=lambda r: (-r["holds_median"], r["relative_after_median"]))
    return out


def averaged_ratio(summary) -> float:
    """Median over the starts of |central - averaged GD| / |gradient flow - averaged GD| after m steps
    (below 1: the central flow is nearer GD's time average than gradient flow is)."""
    ratios = []
    for start in dict.fromkeys(r["start"] for r in summary):
        final = {r["flow"]: r for r in summary if r["start"] == start}
        if f"NGF {AVERAGED}" not in final or f"central {AVERAGED}" not in final:
            continue
        key = next(k for k in final[f"central {AVERAGED}"] if k.startswith("distance_after_"))
        ratios.append(final[f"central {AVERAGED}"][key] / final[f"NGF {AVERAGED}"][key])
    return float(np.median(ratios)) if ratios else math.nan


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


def _typed(rows) -> list[dict]:
    """Rows read back from CSV with their numbers as numbers (empty cells left out)."""
    out = []
    for r in rows:
        row = {k: (float(v) if k in NUMERIC else v) for k, v in r.items() if v != ""}
        out.append({**row, "start": int(row["start"]), "n": int(row["n"])} if "n" in row else row)
    return out


def _resume(folder) -> tuple[list[dict], list[dict], list[dict]]:
    """(starts done, their distance rows, their sharpness rows) from an interrupted run's folder."""
    done, rows = folder.read_keyed("track_starts", "track_distances", ("start",))
    starts = {r["start"] for r in done}
    sharp = [r for r in folder.read_table("track_sharpness") if r["start"] in starts]
    return [{**r, "start": int(r["start"]), "cpu_s": float(r["cpu_s"])} for r in done], _typed(rows), _typed(sharp)


def run(cfg: TrackConfig) -> Path:
    """``gdflows track``: GD, then every model from each start, the tables, figures and REPORT.md into ``cfg.out``."""
    folder, prob = network_run(cfg)
    if folder is None:
        return Path(cfg.out)
    thetas = np.asarray(gd(prob.loss, prob.theta0, cfg.lr, cfg.train_steps + 1))
    done, rows, sharp = _resume(folder)
    finished = {r["start"] for r in done}
    todo = [s for s in cfg.starts if s not in finished]
    for start in progress(todo, "track: models from GD iterates"):
        cpu = time.process_time()
        dist, sh = track_start(
            prob.loss, thetas, cfg.lr, start, cfg.horizon, cfg.flows, prob.tol, rtol=cfg.rtol, atol=cfg.atol
        )
        rows, sharp = rows + dist, sharp + sh
        done.append({"start": start, "phase": dist[0]["phase"], "cpu_s": time.process_time() - cpu})
        folder.write_table("track_sharpness", sharp)
        folder.write_keyed("track_starts", done, "track_distances", rows)
    summary = summarize(rows)
    folder.write_table("track_summary", summary)
    holding = holding_table(summary)
    folder.write_table("track_holding", holding)
    folder.write_text(
        "REPORT.md", markdown(cfg, prob.theta0.size, summary, holding, sharp, done, _figures(folder, cfg, rows))
    )
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path


def _figures(folder, cfg: TrackConfig, rows) -> list[Path]:
    return [
        plots.distance_curves(
            folder.figure_path(f"track_start{s}.png"),
            [r for r in rows if r["start"] == s],
            f"Models of GD from step {s}, h = {cfg.lr}",
        )
        for s in cfg.starts
    ]


def markdown(cfg: TrackConfig, dim: int, summary, holding, sharp, done, figs) -> str:
    m = cfg.horizon
    cols = ["start", "phase", "h_lambda0", "flow", "one_step_error", f"relative_after_{m}", "holds_steps", "rank"]
    cols += ["one_step_dE", "gd_one_step_dE"]
    fmt = {"h_lambda0": "{:.3f}", "one_step_error": "{:.3e}", f"relative_after_{m}": "{:.3f}"}
    fmt |= {"one_step_dE": "{:+.3e}", "gd_one_step_dE": "{:+.3e}"}
    counts = ", ".join(f"{n} {p}" for p, n in Counter(r["phase"] for r in done).items())
    hold_fmt = {"holds_median": "{:g}", "relative_after_median": "{:.3f}"}
    hold_cols = ["phase", "model", "starts", "holds_median", "holds_min", "holds_max", "relative_after_median"]
    holding_text = (
        f"## Which model holds for how long\n\nStarts: {counts} (labelled by what GD does within {m} steps "
        f"either side). Per model, the GD steps it stays within {HOLD_TOL:.0%} of GD (relative to how far GD has "
        f"moved; at most {m}, the horizon), its relative distance after {m} steps, and at how many starts the "
        "sign of its first loss change, Re E(theta_M(h)) - E(theta_s), is GD's (`sign_right`; the quadratic "
        "model's first step is GD's own, so it is right by construction: that is the bar).\n\n"
        + markdown_table(holding, [*hold_cols, "sign_right"], hold_fmt)
    )
    cpu = sum(r["cpu_s"] for r in done)
    ratio = averaged_ratio(summary)
    if math.isfinite(ratio):
        holding_text += (
            f"\n\nTime average: after {m} steps the central flow is {ratio:.2f}x as far from GD's period-two "
            "average as gradient flow is (median over the starts; below 1: nearer)."
        )
    return (
        f"# gdflows track\n\n{cfg.net.activation} {cfg.net.model} (D = {dim}) on {cfg.net.n_train} "
        f"{cfg.net.dataset} images ({cfg.net.dtype}), full-batch GD at h = {cfg.lr}; every model from each start "
        f"s over {m} GD steps. CPU time of the models: {cpu / 60:.1f} minutes.\n\n"
        + holding_text
        + "\n\n## Per start\n\n"
        + markdown_table(summary, cols, fmt)
        + "\n\n"
        + _central_text(sharp, cfg.starts)
        + "\n\n"
        + "\n".join(f"![{f.stem}](figures/{f.name})" for f in figs)
        + "\n"
    )
