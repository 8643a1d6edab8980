r"""``gdflows drift``: GD's per-step drift from the NGF against its leading term (the seed's experiment 3).

For GD iterates theta_n at learning rate h, the drift of one step is

.. math::

    d_n = |\theta_{n+1} - \varphi^{NGF}_h(\theta_n)|, \qquad
    \theta_{n+1} - \varphi^{NGF}_h(\theta_n) = \frac{h^2}{2} H g + O(h^3),

with phi^NGF_h the negative gradient flow solved for time h from theta_n
(:func:`gdflows.integrate`). The table pairs d_n with the prediction
(h^2/2)|H g(theta_n)| across learning rates and training time; the Pearson
correlation is reported for the logs and for the raw values (over all pairs
and per learning rate), with the median of drift / prediction. The verdict
(:func:`drift_verdict`) asks for both: correlation, and the scale within
:data:`~gdflows.experiments.verdicts.DRIFT_BAND`. A learning rate whose GD
diverges stops at the first non-finite iterate.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import gdflows
from gdflows.curvature.hvp import hvp
from gdflows.experiments.configs import DriftConfig
from gdflows.experiments.network_setup import network_run
from gdflows.experiments.report import eos_plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.experiments.verdicts import DRIFT_BAND, Verdict, drift_tracks
from gdflows.gd import first_nonfinite

__all__ = ["DriftConfig", "run", "drift_rows", "correlations", "summary_rows", "write"]


def run(cfg: DriftConfig) -> Path:
    """``gdflows drift``: drift rows at every rate, the figure and REPORT.md into ``cfg.out``."""
    folder, problem = network_run(cfg)
    if folder is None:
        return Path(cfg.out)
    rows = []
    for lr in track(cfg.lrs, "drift: learning rates"):
        rows += drift_rows(problem.loss, problem.theta0, lr, cfg.steps, cfg.every, cfg.rtol, cfg.atol)
    write(folder, rows, cfg)
    folder.finish()
    print(f"report: {folder.file('REPORT.md')}")
    return folder.path


def drift_rows(loss, theta0, lr: float, steps: int, every: int, rtol: float = 1e-10, atol: float = 1e-12) -> list[dict]:
    """One row per measured step n: drift d_n, predicted (h^2/2)|H g_n|, their ratio, E_n, |g_n|.

    GD runs in segments of ``every`` steps, so memory holds ``every + 1``
    iterates, not the whole run; measurement stops where theta_(n+1) is not finite.
    """
    grad = jax.jit(jax.grad(loss))
    flow = gdflows.flows.ngf(loss)
    rows, theta = [], theta0
    for n in range(0, steps, every):
        segment = gdflows.gd(loss, theta, lr, min(every, steps - n))
        if first_nonfinite(segment[:2]) is not None:
            break
        theta = segment[0]
        g = grad(theta)
        ngf = gdflows.integrate(flow, theta, lr, 1, rtol=rtol, atol=atol).thetas[1]
        drift = float(jnp.linalg.norm(segment[1] - ngf))
        predicted = float(lr**2 / 2 * jnp.linalg.norm(hvp(loss, theta, g)))
        rows.append(
            {
                "lr": lr,
                "step": n,
                "loss": float(loss(theta)),
                "grad_norm": float(jnp.linalg.norm(g)),
                "drift": drift,
                "predicted": predicted,
                "ratio": drift / predicted,
            }
        )
        if first_nonfinite(segment) is not None:
            break
        theta = segment[-1]
    return rows


def _pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 else float("nan")


def correlations(rows) -> dict:
    """Pearson r of (log drift, log predicted) and of the raw values, over rows with both > 0."""
    d = np.array([float(r["drift"]) for r in rows])
    p = np.array([float(r["predicted"]) for r in rows])
    ok = (d > 0) & (p > 0) & np.isfinite(d) & np.isfinite(p)
    return {
        "pairs": int(ok.sum()),
        "pearson_log": _pearson(np.log(d[ok]), np.log(p[ok])),
        "pearson_raw": _pearson(d[ok], p[ok]),
        "median_ratio": float(np.median(d[ok] / p[ok])) if ok.any() else float("nan"),
    }


def drift_verdict(c: dict) -> Verdict:
    """Does (h^2/2)|Hg| predict the drift, from :func:`correlations` over all pairs?"""
    return drift_tracks(c["pearson_log"], c["median_ratio"])


def summary_rows(rows) -> list[dict]:
    """Correlations per learning rate, then over all rows."""
    lrs = sorted({float(r["lr"]) for r in rows})
    out = [{"lr": f"{lr:g}"} | correlations([r for r in rows if float(r["lr"]) == lr]) for lr in lrs]
    return out + [{"lr": "all"} | correlations(rows)]


def write(run: Run, rows, cfg: DriftConfig) -> Path:
    run.write_table("drift", rows)
    summary = summary_rows(rows)
    run.write_table("drift_summary", summary)
    fig = eos_plots.drift_scatter(run.figure_path("drift.png"), rows, summary[-1])
    table = markdown_table(
        summary,
        ["lr", "pairs", "pearson_log", "pearson_raw", "median_ratio"],
        {"pearson_log": "{:.4f}", "pearson_raw": "{:.4f}", "median_ratio": "{:.3f}"},
    )
    text = (
        f"# gdflows drift\n\nComputed by `gdflows drift --out {cfg.out}` (config: `config.json`). "
        "Drift |theta_(n+1) - NGF(h; theta_n)| against its leading term (h^2/2)|H g| "
        f"at every {cfg.every}th of {cfg.steps} GD steps; median_ratio is drift / prediction.\n\n"
        f"{table}\n\nDoes |Hg| predict the drift (Pearson r of the logs >= 0.9 over all pairs, and the median "
        f"ratio in [{DRIFT_BAND[0]:g}, {DRIFT_BAND[1]:g}], the quadratic's range at h lambda <= 2 with room for "
        f"third derivatives)? **{drift_verdict(summary[-1])}**.\n\n![drift](figures/{fig.name})\n"
    )
    return run.write_text("REPORT.md", text)
