"""The authors' reference quadratic (Rosca et al. 2023): which flow follows GD.

E = theta^T diag(1, 0.01) theta from (-0.35, -0.2), at h = 0.5, 0.9, 1.0
(20 steps) and 1.05 (5 steps, divergent): |flow(n h) - theta_n| for PF, NGF,
IGR and the third-order flow, and the contour figure with the paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdflows.experiments.configs import QuadraticConfig
from gdflows.experiments.flow_comparison import compare_to_gd, distance_rows, path_rows
from gdflows.experiments.report import plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.problems.quadratic import REFERENCE_LRS, reference_quadratic, reference_theta0

__all__ = ["QuadraticConfig", "run", "quadratic_tables", "quadratic_section"]

QUADRATIC_FLOWS = ("PF", "NGF", "IGR", "third-order")


def quadratic_tables(lrs=REFERENCE_LRS, substeps=8, rtol=1e-12, atol=1e-14):
    """(distance rows, path rows) for each (lr, steps) in ``lrs``."""
    loss, theta0 = reference_quadratic(), reference_theta0()
    dist, paths = [], []
    for lr, steps in track(lrs, "quadratic: flows vs GD"):
        gd_thetas, sols = compare_to_gd(loss, theta0, lr, steps, QUADRATIC_FLOWS, substeps, rtol=rtol, atol=atol)
        dist += distance_rows(gd_thetas, sols, substeps, lr=lr)
        paths += path_rows(sols, gd_thetas, lr, substeps, lr=lr)
    return dist, paths


def summary_rows(dist_rows) -> list[dict]:
    """Per (lr, flow): the largest distance over n and the distance at the last step."""
    out = {}
    for r in dist_rows:
        key = (r["lr"], r["flow"])
        s = out.setdefault(key, {"lr": r["lr"], "flow": r["flow"], "max_distance": 0.0, "final_distance": 0.0})
        s["max_distance"] = max(s["max_distance"], r["distance"])
        s["final_distance"] = r["distance"]
        s["steps"] = r["n"]
    return list(out.values())


def _loss_grid(lim=0.7, n=121):
    A = np.asarray(reference_quadratic().A)
    xs, ys = np.linspace(-lim, lim, n), np.linspace(-0.25, 0.25, n)
    X, Y = np.meshgrid(xs, ys)
    return X, Y, 0.5 * (A[0, 0] * X**2 + A[1, 1] * Y**2)


def quadratic_figures(run: Run, paths) -> list[Path]:
    figs = []
    for lr, _ in REFERENCE_LRS:
        sel = [r for r in paths if float(r["lr"]) == lr]
        if sel:
            figs.append(
                plots.contour_paths(
                    run.figure_path(f"quadratic_lr{lr}.png"),
                    _loss_grid(),
                    sel,
                    f"E = theta^T diag(1, 0.01) theta, h = {lr} (flows: real part)",
                )
            )
    return figs


def quadratic_section(run: Run, dist, paths) -> str:
    run.write_table("quadratic_distances", dist)
    run.write_table("quadratic_paths", paths)
    summary = summary_rows(dist)
    run.write_table("quadratic_summary", summary)
    figs = quadratic_figures(run, paths)
    table = markdown_table(
        summary,
        ["lr", "flow", "steps", "max_distance", "final_distance"],
        {"max_distance": "{:.3e}", "final_distance": "{:.3e}"},
    )
    images = "\n".join(f"![{f.stem}](figures/{f.name})" for f in figs)
    return (
        "## Reference quadratic\n\n"
        "E = theta^T diag(1, 0.01) theta, theta_0 = (-0.35, -0.2). Distance of each flow from GD "
        "at t = n h (largest over n, and at the last step). Only the PF follows GD once h*lambda > 1.\n\n"
        f"{table}\n\n{images}\n"
    )


def run(cfg: QuadraticConfig) -> Path:
    """``gdflows quadratic``: the tables, figures and REPORT.md into ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    folder.create()
    dist, paths = quadratic_tables(substeps=cfg.substeps, rtol=cfg.rtol, atol=cfg.atol)
    folder.write_text("REPORT.md", "# gdflows: reference quadratic\n\n" + quadratic_section(folder, dist, paths))
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path
