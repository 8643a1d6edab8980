"""Figures drawn from result tables (plots read results; they never recompute them).

Every figure survives what a diverging run writes: values that are not
finite, or larger in magnitude than :data:`PLOT_LIMIT`, are left out of the
curves (matplotlib draws a gap) and counted in a note on the axes, so a
figure shows the run up to where it blew up instead of failing.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {
    "GD": dict(color="black", marker="o", ls="none", ms=4, zorder=5),
    "PF": dict(color="tab:red", lw=2),
    "PF+NP": dict(color="tab:purple", lw=1.5, ls="--"),
    "NGF": dict(color="tab:blue", lw=1.5),
    "IGR": dict(color="tab:green", lw=1.5, ls="-."),
    "third-order": dict(color="tab:orange", lw=1.2, ls=":"),
}


PLOT_LIMIT = 1e100  # |values| beyond this are not drawn (no axis can show them beside training-scale values)


def drawable(values) -> np.ndarray:
    """``values`` as floats, NaN where not finite or beyond +-PLOT_LIMIT (drawn as gaps)."""
    x = np.array(values, dtype=float).reshape(-1)
    x[~(np.abs(x) <= PLOT_LIMIT)] = np.nan
    return x


def column(rows, key) -> np.ndarray:
    """One column of result rows (dicts of numbers or strings; a missing or empty cell is NaN), drawable."""
    return drawable([float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows])


def note_hidden(ax, *raw) -> None:
    """Say on ``ax`` how many of the values in ``raw`` (arrays of row values) were left out."""
    hidden = sum(int(np.sum(~(np.abs(np.asarray(r, dtype=float)) <= PLOT_LIMIT))) for r in raw)
    if hidden:
        ax.text(
            0.01,
            0.01,
            f"{hidden} value(s) not finite or beyond 1e100 not drawn",
            transform=ax.transAxes,
            fontsize=7,
            color="tab:red",
        )


def raw_column(rows, key) -> np.ndarray:
    """A column as floats, unclipped (for :func:`note_hidden`)."""
    return np.array([float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows])


def empty(path, title: str, why: str) -> Path:
    """A figure that says why it has nothing to show (e.g. a run that diverged before its first diagnosis)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    ax.set(title=title, xticks=[], yticks=[])
    return save(fig, path)


def _by_flow(rows, **match):
    groups = defaultdict(list)
    for r in rows:
        if all(str(r[k]) == str(v) for k, v in match.items()):
            groups[r["flow"]].append(r)
    return groups


def contour_paths(path, loss_grid, paths, title: str, xlabel="theta_0", ylabel="theta_1"):
    """Loss contours with GD iterates and the real part of each flow's path."""
    X, Y, Z = loss_grid
    Z = np.where(np.abs(Z) <= PLOT_LIMIT, Z, np.nan)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo, hi = np.nanmin(Z), np.nanmax(Z)
    levels = np.geomspace(max(lo, hi * 1e-4), hi, 20) if lo >= 0 and hi > 0 else 25
    ax.contour(X, Y, Z, levels=levels, cmap="Greys", linewidths=0.6)
    for flow, rows in _by_flow(paths).items():
        style = STYLE.get(flow, {})
        ax.plot(column(rows, "re0"), column(rows, "re1"), label=flow, **style)
    return finish(fig, ax, path, title, xlabel, ylabel)


def distance_curves(path, rows, title: str, x="n", y="distance"):
    """|flow - GD| against the GD step, one line per flow (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for flow, group in _by_flow(rows).items():
        vals = np.maximum(column(group, y), 1e-18)  # NaN stays NaN
        ax.semilogy(
            column(group, x),
            vals,
            label=flow,
            **{k: v for k, v in STYLE.get(flow, {}).items() if k != "ls" or flow != "GD"},
        )
    return finish(fig, ax, path, title, "GD step n", "|theta_flow(n h) - theta_n|")


def trajectories(path, paths, coord: int, title: str, ylabel: str):
    """Re theta_coord(t) for each flow, with GD's iterates as dots."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for flow, rows in _by_flow(paths).items():
        ax.plot(column(rows, "t"), column(rows, f"re{coord}"), label=flow, **STYLE.get(flow, {}))
    return finish(fig, ax, path, title, "t (= n h at GD step n)", ylabel)


def error_orders(path, rows, fits: dict):
    """One-step error against h on log-log axes, with fitted slopes in the legend."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for flow, group in _by_flow(rows).items():
        ax.loglog(
            column(group, "h"),
            column(group, "error"),
            marker="o",
            label=f"{flow} (slope {fits[flow]:.2f})",
            **{k: v for k, v in STYLE.get(flow, {}).items() if k not in ("marker", "ls")},
        )
    return finish(fig, ax, path, "One-step error against GD", "learning rate h", "|theta_flow(h) - theta_1|")


def finish(fig, ax, path, title: str, xlabel: str, ylabel: str) -> Path:
    """The closing lines of a figure: title, axis labels and legend, then :func:`save`."""
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if ax.get_legend_handles_labels()[0]:  # a figure of nothing finite has no curves to name
        ax.legend(fontsize=8)
    return save(fig, path)


def save_fitted(fig, path) -> Path:
    """Save at 110 dpi with the bounding box fitted to everything drawn (legends and titles kept whole), close."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
