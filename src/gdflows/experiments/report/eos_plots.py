"""Edge-of-stability and drift figures, drawn from metrics rows (they never recompute).

Rows may come from a run that diverged: values that are not finite or beyond
:data:`~gdflows.experiments.report.plots.PLOT_LIMIT` are gaps with a note, a
figure without a diagnosed row says so, and :func:`loss_change` marks the step
where the run diverged.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gdflows.experiments.divergence import is_diverged  # noqa: E402
from gdflows.experiments.report.plots import column, empty, finish, note_hidden, raw_column, save  # noqa: E402

NOTHING = "no diagnosed step (the run diverged before its first diagnosis)"


def _lambda_keys(rows) -> list[str]:
    return [k for k in rows[0] if k.startswith("lambda_")]


def _diagnosed(rows) -> list:
    return [r for r in rows if r.get("lambda_0") not in ("", None)]


def _divergence(rows) -> tuple[float, str] | None:
    """(step, outcome) of the row that records a divergence, if any."""
    for r in rows:
        if is_diverged(r.get("outcome")):
            return float(r["step"]), str(r["outcome"])
    return None


def _linthresh(values) -> float:
    """Linear range of a symlog axis: 1% of the median magnitude (values span decades)."""
    size = np.abs(values[np.isfinite(values)])
    return max(1e-12, float(np.median(size)) / 100) if size.size else 1.0


def sharpness(path, rows, tol: float, title: str | None = None) -> Path:
    """lambda_i against the step, with 2/h and the +-tol band over the last third; ``title`` from the run's verdicts."""
    if not rows:
        return empty(path, "Sharpness", NOTHING)
    steps, edge, edge_name = column(rows, "step"), float(rows[0]["two_over_h"]), "2 / h"
    fig, ax = plt.subplots(figsize=(6.5, 4))
    matched = str(rows[0].get("threshold", "")) not in ("", "nan")  # the optimizer's own sharpness and threshold
    if matched:
        edge, edge_name = float(rows[0]["threshold"]), str(rows[0]["threshold_name"])
        name = textwrap.fill(str(rows[0].get("sharpness_name") or "sharpness"), 40)
        ax.plot(steps, column(rows, "sharpness"), lw=2, color="tab:red", label=name)
        if edge > 10 * np.nanmax(np.abs(column(rows, "lambda_0")), initial=0):  # e.g. Adam's 38/h beside H's lambda_0
            ax.set_yscale("log")
    for i, key in enumerate(_lambda_keys(rows)):
        ax.plot(steps, column(rows, key), lw=2 if i == 0 else 1, alpha=1 if i == 0 else 0.6, label=key)
    ax.axhline(edge, color="black", ls="--", lw=1, label=edge_name)
    ax.fill_between(
        [2 * steps[-1] / 3, steps[-1]],
        (1 - tol) * edge,
        (1 + tol) * edge,
        color="grey",
        alpha=0.2,
        label=f"{'2/h' if edge_name == '2 / h' else edge_name} +- {tol:.0%} (last third)",
    )
    note_hidden(ax, *(raw_column(rows, key) for key in _lambda_keys(rows)))
    ax.set(
        xlabel="step n" if matched else "GD step n",
        ylabel="eigenvalue" if matched else "Hessian eigenvalue",
    )
    ax.set_title(textwrap.fill(title or "Sharpness: lambda_i against 2/h", 70), fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, path)


def stability_coefficient(path, rows) -> Path:
    """Re and Im of sc_0 = log(1 - h lambda_0) / (h lambda_0) against the step."""
    if not rows:
        return empty(path, "Stability coefficient of the top direction", NOTHING)
    steps = column(rows, "step")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, column(rows, "sc_0_re"), color="tab:red", label="Re sc_0 (> 0: loss rises along u_0)")
    ax.plot(steps, column(rows, "sc_0_im"), color="tab:blue", label="Im sc_0 (> 0: h lambda_0 > 1, oscillation)")
    ax.axhline(0, color="black", lw=0.8)
    note_hidden(ax, raw_column(rows, "sc_0_re"), raw_column(rows, "sc_0_im"))
    ax.set(title="Stability coefficient of the top direction", xlabel="GD step n", ylabel="sc_0")
    ax.legend(fontsize=8)
    return save(fig, path)


def projection(path, rows) -> Path:
    """c_0 = u_0 . g at theta_n and at theta_n - h g_n; filled markers where the sign flips."""
    if not rows:
        return empty(path, "Gradient along the top eigenvector", NOTHING)
    steps, c0, nxt = column(rows, "step"), column(rows, "c_0"), column(rows, "c_0_next")
    flip = c0 * nxt < 0
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, c0, color="tab:purple", lw=1, label="c_0 at step n")
    ax.plot(steps, nxt, color="tab:orange", lw=1, ls="--", label="u_0 . g at step n + 1")
    ax.scatter(steps[flip], c0[flip], s=12, color="tab:purple", zorder=3, label="sign flips over the step")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_yscale("symlog", linthresh=_linthresh(np.concatenate([c0, nxt])))
    note_hidden(ax, raw_column(rows, "c_0"), raw_column(rows, "c_0_next"))
    ax.set(title="Gradient along the top eigenvector", xlabel="GD step n", ylabel="c_0")
    ax.legend(fontsize=8)
    return save(fig, path)


def loss_change(path, rows) -> Path:
    """Loss (top) and the PF-predicted dE/dt against the observed (E_{n+1} - E_n)/h (bottom).

    ``rows`` may include the row that records a divergence: its step is marked on both panels.
    """
    diverged = _divergence(rows)
    losses = [r for r in rows if r.get("loss") not in ("", None)]  # the divergence row too: the curve up to there
    rows = _diagnosed(rows)
    if not rows:
        return empty(path, "Training loss", NOTHING if diverged is None else f"{NOTHING}: {diverged[1]}")
    steps = column(rows, "step")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True)
    top.semilogy(column(losses, "step"), column(losses, "loss"), color="black")
    top.set(title="Training loss", ylabel="E")
    pred, obs = column(rows, "dE_dt"), column(rows, "observed_dE_dt")
    bottom.plot(steps, pred, color="tab:red", lw=1.5, label="PF dE/dt at step n")
    bottom.plot(steps, obs, color="black", marker="o", ms=3, ls="none", label="(E_(n+1) - E_n) / h")
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_yscale("symlog", linthresh=_linthresh(np.concatenate([pred, obs])))
    bottom.set(xlabel="GD step n", ylabel="dE/dt")
    note_hidden(top, raw_column(losses, "loss"))
    note_hidden(bottom, raw_column(rows, "dE_dt"), raw_column(rows, "observed_dE_dt"))
    if diverged is not None:
        for ax in (top, bottom):
            ax.axvline(diverged[0], color="tab:red", ls=":", lw=1.2, label=diverged[1])
        top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    return save(fig, path)


def drift_scatter(path, rows, fits: dict) -> Path:
    """|theta_{n+1} - NGF(h; theta_n)| against (h^2/2)|H g|, one colour per h, log-log."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for lr in sorted({float(r["lr"]) for r in rows}):
        sel = [r for r in rows if float(r["lr"]) == lr]
        ax.loglog(column(sel, "predicted"), column(sel, "drift"), marker="o", ms=3, ls="none", label=f"h = {lr:g}")
    both = np.concatenate([column(rows, "predicted"), column(rows, "drift")])
    positive = both[both > 0]
    if positive.size:
        lo, hi = positive.min(), positive.max()
        ax.loglog([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="drift = (h^2/2)|Hg|")
    title = f"Drift vs (h^2/2)|Hg| (Pearson of logs {fits['pearson_log']:.3f})"
    return finish(fig, ax, path, title, "(h^2/2) |H g(theta_n)|", "|theta_(n+1) - NGF(h; theta_n)|")
