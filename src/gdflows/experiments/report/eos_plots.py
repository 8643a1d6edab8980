"""Edge-of-stability and drift figures, drawn from metrics rows (they never recompute)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gdflows.experiments.report.plots import _save  # noqa: E402


def _col(rows, key) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def _lambda_keys(rows) -> list[str]:
    return [k for k in rows[0] if k.startswith("lambda_")]


def _linthresh(values) -> float:
    """Linear range of a symlog axis: 1% of the median magnitude (values span decades)."""
    size = np.abs(values[np.isfinite(values)])
    return max(1e-12, float(np.median(size)) / 100) if size.size else 1.0


def sharpness(path, rows, tol: float, title: str | None = None) -> Path:
    """lambda_i against the step, with 2/h and the +-tol band over the last third; ``title`` from the run's verdicts."""
    steps, edge = _col(rows, "step"), float(rows[0]["two_over_h"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, key in enumerate(_lambda_keys(rows)):
        ax.plot(steps, _col(rows, key), lw=2 if i == 0 else 1, alpha=1 if i == 0 else 0.6, label=key)
    ax.axhline(edge, color="black", ls="--", lw=1, label="2 / h")
    ax.fill_between(
        [2 * steps[-1] / 3, steps[-1]],
        (1 - tol) * edge,
        (1 + tol) * edge,
        color="grey",
        alpha=0.2,
        label=f"2/h +- {tol:.0%} (last third)",
    )
    ax.set(
        title=title or "Sharpness: lambda_i against 2/h",
        xlabel="GD step n",
        ylabel="Hessian eigenvalue",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def stability_coefficient(path, rows) -> Path:
    """Re and Im of sc_0 = log(1 - h lambda_0) / (h lambda_0) against the step."""
    steps = _col(rows, "step")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, _col(rows, "sc_0_re"), color="tab:red", label="Re sc_0 (> 0: loss rises along u_0)")
    ax.plot(steps, _col(rows, "sc_0_im"), color="tab:blue", label="Im sc_0 (> 0: h lambda_0 > 1, oscillation)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(title="Stability coefficient of the top direction", xlabel="GD step n", ylabel="sc_0")
    ax.legend(fontsize=8)
    return _save(fig, path)


def projection(path, rows) -> Path:
    """c_0 = u_0 . g at theta_n and at theta_n - h g_n; filled markers where the sign flips."""
    steps, c0, nxt = _col(rows, "step"), _col(rows, "c_0"), _col(rows, "c_0_next")
    flip = c0 * nxt < 0
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, c0, color="tab:purple", lw=1, label="c_0 at step n")
    ax.plot(steps, nxt, color="tab:orange", lw=1, ls="--", label="u_0 . g at step n + 1")
    ax.scatter(steps[flip], c0[flip], s=12, color="tab:purple", zorder=3, label="sign flips over the step")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_yscale("symlog", linthresh=_linthresh(np.concatenate([c0, nxt])))
    ax.set(title="Gradient along the top eigenvector", xlabel="GD step n", ylabel="c_0")
    ax.legend(fontsize=8)
    return _save(fig, path)


def loss_change(path, rows) -> Path:
    """Loss (top) and the PF-predicted dE/dt against the observed (E_{n+1} - E_n)/h (bottom)."""
    steps = _col(rows, "step")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True)
    top.semilogy(steps, _col(rows, "loss"), color="black")
    top.set(title="Training loss", ylabel="E")
    pred, obs = _col(rows, "dE_dt"), _col(rows, "observed_dE_dt")
    bottom.plot(steps, pred, color="tab:red", lw=1.5, label="PF dE/dt at step n")
    bottom.plot(steps, obs, color="black", marker="o", ms=3, ls="none", label="(E_(n+1) - E_n) / h")
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_yscale("symlog", linthresh=_linthresh(np.concatenate([pred, obs])))
    bottom.set(xlabel="GD step n", ylabel="dE/dt")
    bottom.legend(fontsize=8)
    return _save(fig, path)


def drift_scatter(path, rows, fits: dict) -> Path:
    """|theta_{n+1} - NGF(h; theta_n)| against (h^2/2)|H g|, one colour per h, log-log."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for lr in sorted({float(r["lr"]) for r in rows}):
        sel = [r for r in rows if float(r["lr"]) == lr]
        ax.loglog(_col(sel, "predicted"), _col(sel, "drift"), marker="o", ms=3, ls="none", label=f"h = {lr:g}")
    both = np.concatenate([_col(rows, "predicted"), _col(rows, "drift")])
    lo, hi = np.nanmin(both[both > 0]), np.nanmax(both)
    ax.loglog([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="drift = (h^2/2)|Hg|")
    ax.set(
        title=f"Drift vs (h^2/2)|Hg| (Pearson of logs {fits['pearson_log']:.3f})",
        xlabel="(h^2/2) |H g(theta_n)|",
        ylabel="|theta_(n+1) - NGF(h; theta_n)|",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)
