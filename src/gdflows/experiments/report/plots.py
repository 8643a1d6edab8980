"""Figures drawn from result tables (plots read results; they never recompute them)."""

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


def _by_flow(rows, **match):
    groups = defaultdict(list)
    for r in rows:
        if all(str(r[k]) == str(v) for k, v in match.items()):
            groups[r["flow"]].append(r)
    return groups


def _col(rows, key):
    return np.array([float(r[key]) for r in rows])


def contour_paths(path, loss_grid, paths, title: str, xlabel="theta_0", ylabel="theta_1"):
    """Loss contours with GD iterates and the real part of each flow's path."""
    X, Y, Z = loss_grid
    fig, ax = plt.subplots(figsize=(6, 4.5))
    levels = np.geomspace(max(Z.min(), Z.max() * 1e-4), Z.max(), 20) if Z.min() >= 0 else 25
    ax.contour(X, Y, Z, levels=levels, cmap="Greys", linewidths=0.6)
    for flow, rows in _by_flow(paths).items():
        style = STYLE.get(flow, {})
        ax.plot(_col(rows, "re0"), _col(rows, "re1"), label=flow, **style)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def distance_curves(path, rows, title: str, x="n", y="distance"):
    """|flow - GD| against the GD step, one line per flow (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for flow, group in _by_flow(rows).items():
        vals = np.maximum(_col(group, y), 1e-18)
        ax.semilogy(
            _col(group, x),
            vals,
            label=flow,
            **{k: v for k, v in STYLE.get(flow, {}).items() if k != "ls" or flow != "GD"},
        )
    ax.set(title=title, xlabel="GD step n", ylabel="|theta_flow(n h) - theta_n|")
    ax.legend(fontsize=8)
    return _save(fig, path)


def trajectories(path, paths, coord: int, title: str, ylabel: str):
    """Re theta_coord(t) for each flow, with GD's iterates as dots."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for flow, rows in _by_flow(paths).items():
        ax.plot(_col(rows, "t"), _col(rows, f"re{coord}"), label=flow, **STYLE.get(flow, {}))
    ax.set(title=title, xlabel="t (= n h at GD step n)", ylabel=ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def error_orders(path, rows, fits: dict):
    """One-step error against h on log-log axes, with fitted slopes in the legend."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for flow, group in _by_flow(rows).items():
        ax.loglog(
            _col(group, "h"),
            _col(group, "error"),
            marker="o",
            label=f"{flow} (slope {fits[flow]:.2f})",
            **{k: v for k, v in STYLE.get(flow, {}).items() if k not in ("marker", "ls")},
        )
    ax.set(title="One-step error against GD", xlabel="learning rate h", ylabel="|theta_flow(h) - theta_1|")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
