r"""``gdflows central``: GD, gradient flow and the central flow side by side from initialisation.

GD at learning rate h sharpens until its top eigenvalues reach 2/h and then
oscillates there (the edge of stability). The central flow
(:mod:`gdflows.flows.central`) models GD's time average: this command runs
GD, gradient flow (the NGF) and the central flow from the same
initialisation, compares them and judges four claims, each from measured
numbers by a tested rule:

* **loss**: after EoS onset, GD's time-averaged loss (a centred moving
  average over ``window`` steps) lies within 5% of the central prediction
  L + <Sigma, H>/2 on at least 90% of the steps;
* **sharpness**: the flow's lambda_0 stays within 1% of 2/h on the steps
  where GD is at EoS;
* **trajectory**: at the end, the time-averaged GD iterate is at most 0.3
  times as far from the central flow as from gradient flow;
* **cost**: the CPU time per GD step of the central flow once a second
  eigenvalue is at 2/h is at most 5x its time with one.

EoS onset is the first step at which GD's loss rises (L_{n+1} > L_n): below
the edge GD decreases the loss monotonically, so a rise means it has begun
to oscillate; "GD at EoS at step n" means a rise within the centred window.
GD at the edge oscillates in bursts (catapults) as well as step to step; the
averaging window has to span a burst cycle, whose measured length the report
states, and the report gives the loss claim for shorter windows beside it.

A GD run that diverges is analysed up to its last finite iterate (the report
says where it stopped); a central flow that diverges fails the trajectory
claim.

``--optimizer rmsprop`` runs the same comparison for full-batch RMSProp
(:mod:`gdflows.flows.central_rmsprop`): RMSProp from nu_0 = g(theta_0)^2, its
stable flow (the central flow with Sigma = 0; Euler at h/20) in gradient
flow's place, RMSProp's central flow, and the preconditioned sharpness
lambda_max(P^-1/2 H P^-1/2) in lambda_0's, against the same 2/h.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from gdflows.central_solver import CentralSolution, solve_central
from gdflows.curvature.eigen import hessian_eigenpairs
from gdflows.curvature.preconditioned import preconditioned_eigenpairs
from gdflows.experiments.configs import CentralConfig
from gdflows.experiments.network_setup import network_run
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.plots import plt, save
from gdflows.experiments.report.progress import track
from gdflows.experiments.verdicts import meets
from gdflows.flows import central, central_rmsprop, ngf
from gdflows.flows.central_rmsprop import rmsprop_iterates, stable_flow
from gdflows.gd import first_nonfinite, gd
from gdflows.integrate import integrate

LOSS_REL = 0.05  # time-averaged GD loss within 5% of the central prediction ...
LOSS_FRACTION = 0.9  # ... on at least 90% of the steps after EoS onset
HOLD_REL = 0.01  # lambda_0 on the flow within 1% of 2/h while GD is at EoS
DISTANCE_RATIO = 0.3  # |avg GD - central| <= 0.3 |avg GD - gradient flow| at the end
SLOWDOWN = 5.0  # time per step with two eigenvalues at 2/h <= 5x that with one
EDGE_REL = 0.01  # an eigenvalue of the flow "at 2/h" when within 1% of it


@dataclasses.dataclass(frozen=True)
class Names:
    """How a run names the optimizer, its flow below the edge and their columns."""

    optimizer: str = "GD"
    prefix: str = "gd"
    comparator: str = "gradient flow"
    comparator_prefix: str = "gf"
    sharpness: str = "lambda"


NAMES = {
    "gd": Names(),
    "rmsprop": Names("RMSProp", "rmsprop", "RMSProp's stable flow", "stable", "preconditioned lambda"),
}


def centred_average(x, window: int) -> np.ndarray:
    """Centred moving average over ``window`` (odd) rows: mean of x[n - w//2 .. n + w//2]; NaN where incomplete."""
    x = np.asarray(x, float)
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window!r}")
    half = window // 2
    sums = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), x]), axis=0)
    out = np.full(x.shape, np.nan)
    if len(x) >= window:
        out[half : len(x) - half] = (sums[window:] - sums[:-window]) / window
    return out


def rises(losses, rtol: float = 0.0) -> np.ndarray:
    """rises[n]: GD's loss rose at step n by more than ``rtol`` of it (L_{n+1} - L_n > rtol |L_n|); length
    len(losses) - 1. A float32 loss that barely moves rises by rounding alone: pass rtol ~ 1e-6 there."""
    losses = np.asarray(losses, float)
    return losses[1:] - losses[:-1] > rtol * np.abs(losses[:-1])


def eos_onset(losses) -> int | None:
    """The first step n with L_{n+1} > L_n (GD has begun to oscillate), or None."""
    up = np.flatnonzero(rises(losses))
    return int(up[0]) if up.size else None


def at_eos(losses, window: int) -> np.ndarray:
    """Per step: GD's loss rose somewhere in the centred window around it (GD oscillates there)."""
    up = np.append(rises(losses), False).astype(float)
    half = window // 2
    sums = np.cumsum(np.concatenate([[0.0], np.pad(up, half)]))
    return (sums[window:] - sums[:-window]) > 0


def burst_starts(losses, quiet: int = 20) -> np.ndarray:
    """Steps where a burst of loss rises begins: a rise after at least ``quiet`` steps without one.

    GD at the edge oscillates in bursts; their spacing is the cycle the averaging window must cover.
    """
    up = np.flatnonzero(rises(losses))
    if up.size == 0:
        return up
    return np.concatenate([up[:1], up[1:][np.diff(up) > quiet]])


def loss_tracking(gd_average, prediction, start: int | None) -> dict:
    """From ``start`` on: the fraction of steps with |avg - pred| <= LOSS_REL pred, the largest and median gaps."""
    if start is None:
        return {"fraction": float("nan"), "largest": float("nan"), "median": float("nan"), "steps": 0}
    avg, pred = np.asarray(gd_average)[start:], np.asarray(prediction)[start:]
    ok = np.isfinite(avg) & np.isfinite(pred)
    gap = np.abs(avg[ok] - pred[ok]) / np.abs(pred[ok])
    if gap.size == 0:
        return {"fraction": float("nan"), "largest": float("nan"), "median": float("nan"), "steps": 0}
    return {
        "fraction": float(np.mean(gap <= LOSS_REL)),
        "largest": float(gap.max()),
        "median": float(np.median(gap)),
        "steps": int(gap.size),
    }


def sharpness_hold(flow_lambda0, lr: float, mask) -> float:
    """Largest |h lambda_0 / 2 - 1| of the flow over the steps in ``mask``; NaN if none."""
    dev = np.abs(lr * np.asarray(flow_lambda0)[np.asarray(mask)] / 2 - 1)
    dev = dev[np.isfinite(dev)]
    return float(dev.max()) if dev.size else float("nan")


def distance_ratio(gd_average, central_thetas, gf_thetas) -> tuple[float, float, float, int | None]:
    """(|avg - central|, |avg - GF|, their ratio, step) at the last step where the GD average is defined.

    A non-finite central state counts as infinitely far; no defined average gives NaNs and step None.
    """
    avg = np.asarray(gd_average)
    defined = np.flatnonzero(np.all(np.isfinite(avg), axis=1))
    if defined.size == 0:
        return float("nan"), float("nan"), float("nan"), None
    n = int(defined[-1])
    d_cf = float(np.linalg.norm(avg[n] - central_thetas[n]))
    d_cf = d_cf if np.isfinite(d_cf) else float("inf")
    d_gf = float(np.linalg.norm(avg[n] - gf_thetas[n]))
    return d_cf, d_gf, d_cf / d_gf, n


def edge_count(eigenvalues, lr: float) -> np.ndarray:
    """Per step: how many tracked eigenvalues are within EDGE_REL of 2/h."""
    return np.sum(lr * np.asarray(eigenvalues) >= 2 * (1 - EDGE_REL), axis=1)


def slowdown(chunk_rows, key: str = "seconds") -> dict:
    """Mean ``key`` (seconds) per GD step over chunks with two or more eigenvalues at 2/h, over those with one.

    ``chunk_rows``: dicts with ``key``, ``steps``, ``hvps`` and ``at_edge`` (the most eigenvalues at 2/h
    within the chunk). The first chunk (it compiles) is left out.
    """

    def mean(rows, name):
        steps = sum(r["steps"] for r in rows)
        return sum(r[name] for r in rows) / steps if steps else float("nan")

    rows = list(chunk_rows)[1:]
    one = [r for r in rows if r["at_edge"] == 1]
    two = [r for r in rows if r["at_edge"] >= 2]
    out = {"seconds_one": mean(one, key), "seconds_two": mean(two, key)}
    out["hvps_one"], out["hvps_two"] = mean(one, "hvps"), mean(two, "hvps")
    out["ratio"] = out["seconds_two"] / out["seconds_one"] if one and two else float("nan")
    return out


def claims(metrics: dict, names: Names = Names()) -> list[dict]:
    """The four acceptance claims with their measured numbers and verdicts."""
    opt, lam = names.optimizer, names.sharpness
    rows = [
        (f"loss: time-averaged {opt} within 5% of L + <Sigma,H>/2 after EoS onset", "fraction of steps",
         "loss_fraction", LOSS_FRACTION, False),
        (f"sharpness: flow {lam}_0 within 1% of 2/h while {opt} is at EoS", f"largest |h {lam}_0/2 - 1|", "hold",
         HOLD_REL, True),
        (f"trajectory: |avg {opt} - central| <= 0.3 |avg {opt} - {names.comparator}| at the end", "ratio",
         "distance_ratio", DISTANCE_RATIO, True),
        ("cost: time per step with 2 eigenvalues at 2/h <= 5x that with 1", "CPU-time ratio", "slowdown", SLOWDOWN,
         True),
    ]  # fmt: skip
    return [
        {
            "claim": claim,
            "measure": measure,
            "measured": metrics[key],
            "threshold": threshold,
            "verdict": str(meets(metrics[key], threshold, at_most)),
        }
        for claim, measure, key, threshold, at_most in rows
    ]


def gd_sharpness(loss, thetas, k: int, every: int, nus=None, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """(steps, top-k eigenvalues (rows, k)) of H at GD iterates 0, every, 2 every, ... (warm-started); with
    RMSProp's EMAs ``nus``, of P^-1/2 H P^-1/2, P = sqrt(nu + eps), at its iterates."""
    steps = np.arange(0, len(thetas), every)
    values, previous = [], None
    for n in track(steps, "central: sharpness"):
        if nus is None:
            pairs = hessian_eigenpairs(loss, thetas[n], k, tol=1e-8, warm_start=previous)
            previous = pairs
        else:
            pairs = preconditioned_eigenpairs(loss, thetas[n], np.sqrt(nus[n] + eps), k, tol=1e-8)
        values.append(np.asarray(pairs.values))
    return steps, np.array(values)


def solve_timed(flow, theta0, steps: int, chunk: int, nu0=None) -> tuple[CentralSolution, list[dict]]:
    """The central flow, with the wall and CPU time of each compiled call of ``chunk`` GD steps (a row per call).

    CPU time (this process's) is the steadier measure on a shared machine."""
    starts = range(0, steps + 1, chunk)  # solve_central's calls: the last also records the final state
    bar = iter(track(starts, "central: central flow"))
    times = [(time.perf_counter(), time.process_time())]

    def tick(_):
        times.append((time.perf_counter(), time.process_time()))
        next(bar, None)

    next(bar, None)
    sol = solve_central(flow, theta0, steps, chunk=chunk, callback=tick, nu0=nu0)
    for _ in bar:
        pass
    at_edge = edge_count(sol.eigenvalues, float(flow.lr))
    rows = []
    for i, start in enumerate(starts):
        n = min(chunk, steps + 1 - start)
        rows.append(
            {
                "call": i,
                "first_step": start,
                "steps": n,
                "seconds": times[i + 1][0] - times[i][0],
                "cpu_seconds": times[i + 1][1] - times[i][1],
                "hvps": float(np.sum(sol.hvps[start : start + n])),
                "at_edge": int(np.max(at_edge[start : start + n])),
            }
        )
    return sol, rows


def step_rows(lr, gd_losses, gd_average, gf_losses, sol: CentralSolution, gd_eigs, names=Names()) -> list[dict]:
    """One row per step: losses of the optimizer (raw, averaged), its comparator (gradient flow) and the
    central flow, the central prediction, the flow's tracked h*lambda_i, the optimizer's where measured
    (columns named by ``names``: gd_loss, gf_loss, ... for GD)."""
    p, q = names.prefix, names.comparator_prefix
    eig_steps, eig_values = gd_eigs
    measured = dict(zip(eig_steps.tolist(), eig_values))
    rows = []
    for n in range(len(gd_losses)):
        row = {
            "n": n,
            f"{p}_loss": float(gd_losses[n]),
            f"{p}_loss_average": float(gd_average[n]),
            f"{q}_loss": float(gf_losses[n]),
            "central_loss": float(sol.loss[n]),
            "central_prediction": float(sol.prediction[n]),
        }
        row.update({f"central_h_lambda{i}": float(lr * v) for i, v in enumerate(sol.eigenvalues[n])})
        if n in measured:
            row.update({f"{p}_h_lambda{i}": float(lr * v) for i, v in enumerate(measured[n])})
        rows.append(row)
    return rows


def loss_figure(path, rows, onset, title: str, names: Names = Names()) -> Path:
    """GD's loss (raw and time-averaged), gradient flow's, the central flow's and its prediction: the
    whole run (log scale) and, beside it, the steps from EoS onset on (linear scale)."""
    n = np.array([r["n"] for r in rows])

    def col(key):
        return np.array([r[key] for r in rows])

    p, opt = names.prefix, names.optimizer
    curves = [
        (f"{p}_loss", dict(color="0.75", lw=0.6, label=opt)),
        (f"{p}_loss_average", dict(color="black", lw=1.4, label=f"{opt}, centred average")),
        (f"{names.comparator_prefix}_loss", dict(color="tab:blue", lw=1.2, label=names.comparator)),
        ("central_loss", dict(color="tab:orange", lw=1.2, ls="--", label="central flow L(w)")),
        ("central_prediction", dict(color="tab:red", lw=1.4, label="central prediction L + <Sigma,H>/2")),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    start = 0 if onset is None else onset
    for ax, part in zip(axes, (slice(None), slice(start, None))):
        for key, style in curves:
            ax.plot(n[part], col(key)[part], **style)
        if onset is not None:
            ax.axvline(onset, color="0.5", ls=":", lw=1, label="EoS onset")
        ax.set(xlabel=f"{opt} step n (flow time t = n h)", ylabel="training loss")
    zoom = col("central_prediction")[start:]
    axes[0].set(yscale="log", title=title)
    axes[1].set(ylim=(0.8 * np.nanmin(zoom), 1.25 * np.nanmax(zoom)), title="from EoS onset")
    axes[0].legend(fontsize=7)
    return save(fig, path)


def sharpness_figure(path, rows, title: str, names: Names = Names()) -> Path:
    """h*lambda_i along the optimizer (where measured) and along the central flow, against 2."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    n = np.array([r["n"] for r in rows])
    keys = [key for key in rows[0] if key.startswith("central_h_lambda")]
    for i, key in enumerate(keys):
        ax.plot(n, [r[key] for r in rows], color="tab:red", lw=1.4 if i == 0 else 0.9, alpha=1 if i == 0 else 0.6,
                label="central flow" if i == 0 else None)  # fmt: skip
    p, lam = names.prefix, names.sharpness
    measured = [r for r in rows if f"{p}_h_lambda0" in r]
    for i in range(len(keys)):
        ax.plot([r["n"] for r in measured], [r[f"{p}_h_lambda{i}"] for r in measured], color="black", lw=0.7,
                alpha=1 if i == 0 else 0.5, label=names.optimizer if i == 0 else None)  # fmt: skip
    ax.axhline(2.0, color="0.4", ls="--", lw=1, label=f"h {lam} = 2")
    ax.set(xlabel=f"{names.optimizer} step n", ylabel=f"h * {lam}_i (top eigenvalues)", title=title)
    ax.legend(fontsize=7)
    return save(fig, path)


def measure(lr, window, gd_thetas, gd_losses, gf_thetas, sol: CentralSolution, chunk_rows) -> dict:
    """Every number the claims are judged on (see the module docstring)."""
    onset = eos_onset(gd_losses)
    gd_average = centred_average(gd_losses, window)
    mask = at_eos(gd_losses, window)
    tracking = loss_tracking(gd_average, sol.prediction, onset)
    d_cf, d_gf, ratio, at = distance_ratio(centred_average(gd_thetas, window), sol.thetas, gf_thetas)
    cost = slowdown(chunk_rows, "cpu_seconds")
    wall = slowdown(chunk_rows, "seconds")
    edges = edge_count(sol.eigenvalues, lr)
    second = np.flatnonzero(edges >= 2)
    spacing = np.diff(burst_starts(gd_losses))
    return {
        "onset": onset,
        "cycle_median": float(np.median(spacing)) if spacing.size else float("nan"),
        "steps_at_eos": int(np.sum(mask)),
        "loss_fraction": tracking["fraction"],
        "loss_largest_gap": tracking["largest"],
        "loss_median_gap": tracking["median"],
        "hold": sharpness_hold(sol.eigenvalues[:, 0], lr, mask),
        "distance_central": d_cf,
        "distance_gradient_flow": d_gf,
        "distance_ratio": ratio,
        "distance_step": at,
        "second_at_edge": int(second[0]) if second.size else None,
        "slowdown": cost["ratio"],
        "slowdown_wall": wall["ratio"],
        **{f"cost_{key}": value for key, value in cost.items() if key != "ratio"},
    }


WINDOWS = (21, 101, 201)  # also reported: how the loss claim depends on the averaging window


def optimizer_runs(cfg: CentralConfig, loss, theta0):
    """(thetas, nus or None, comparator thetas, its status, the central flow, nu0): the optimizer's iterates
    (up to the last finite one), its flow below the edge, and its central flow (see the module docstring)."""
    lr, steps = cfg.lr, cfg.steps
    if cfg.optimizer == "gd":
        thetas = np.asarray(gd(loss, theta0, lr, steps))
        gf = integrate(ngf(loss), theta0, lr, steps, rtol=cfg.gf_rtol, atol=cfg.gf_atol)
        return thetas, None, gf.thetas, str(gf.status), central(loss, lr, cfg.k, cfg.substeps), None
    nu0 = jax.grad(loss)(theta0) ** 2
    thetas, nus = map(np.asarray, rmsprop_iterates(loss, theta0, nu0, lr, steps, cfg.decay))
    stable, _ = stable_flow(loss, theta0, nu0, lr, steps, cfg.decay)
    flow = central_rmsprop(loss, lr, decay=cfg.decay, k=cfg.k, substeps=cfg.substeps)
    status = "finite (Euler, dt = h/20)" if np.all(np.isfinite(stable)) else "nonfinite"
    return thetas, nus, np.asarray(stable), status, flow, nu0


def run(cfg: CentralConfig) -> Path:
    """``gdflows central``: GD, gradient flow and the central flow; tables, figures and REPORT.md in ``cfg.out``."""
    folder, prob = network_run(cfg)
    if folder is None:
        return Path(cfg.out)
    loss, theta0, lr, names = prob.loss, prob.theta0, cfg.lr, NAMES[cfg.optimizer]
    gd_thetas, nus, gf_thetas, gf_status, flow, nu0 = optimizer_runs(cfg, loss, theta0)
    diverged = first_nonfinite(gd_thetas)
    gd_thetas = gd_thetas[:diverged]
    gd_losses = np.asarray(jax.jit(jax.vmap(loss))(gd_thetas))
    gf_losses = np.asarray(jax.jit(jax.vmap(loss))(gf_thetas))
    sol, calls = solve_timed(flow, theta0, len(gd_thetas) - 1, cfg.chunk, nu0)
    gd_eigs = gd_sharpness(loss, gd_thetas, cfg.k, cfg.sharpness_every, nus)
    metrics = measure(lr, cfg.window, gd_thetas, gd_losses, gf_thetas[: len(gd_thetas)], sol, calls)
    metrics.update(gd_diverged_at=diverged, gradient_flow_status=gf_status, central_status=str(sol.status))
    rows = step_rows(lr, gd_losses, centred_average(gd_losses, cfg.window), gf_losses, sol, gd_eigs, names)
    folder.write_table("central_steps", rows)
    folder.write_table("central_calls", calls)
    folder.write_table("central_metrics", [metrics])
    verdicts = claims(metrics, names)
    folder.write_table("central_claims", verdicts)
    title = f"{names.optimizer}, {cfg.net.activation} MLP (D = {theta0.size}), h = {lr}"
    figures = [
        loss_figure(folder.figure_path("loss.png"), rows, metrics["onset"], f"Loss: {title}", names),
        sharpness_figure(folder.figure_path("sharpness.png"), rows, f"Top eigenvalues: {title}", names),
    ]
    windows = window_rows(gd_losses, sol.prediction, metrics["onset"], WINDOWS + (cfg.window,))
    folder.write_table("central_windows", windows)
    folder.write_text("REPORT.md", report(cfg, prob, sol, metrics, verdicts, windows, figures))
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path


def window_rows(gd_losses, prediction, onset, windows) -> list[dict]:
    """The loss claim's numbers for several averaging windows."""
    rows = []
    for w in dict.fromkeys(windows):
        tracking = loss_tracking(centred_average(gd_losses, w), prediction, onset)
        rows.append(
            {"window": w, **tracking, "verdict": str(meets(tracking["fraction"], LOSS_FRACTION, at_most=False))}
        )
    return rows


def _fmt(value, spec="{:.3g}") -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return spec.format(value) if np.isfinite(value) else "n/a"
    return str(value)


def report(cfg: CentralConfig, prob, sol: CentralSolution, metrics: dict, verdicts, windows, figures) -> str:
    """REPORT.md: the setting, the claims with their verdicts, the cost, the window sensitivity, the figures."""
    m, net, names = metrics, cfg.net, NAMES[cfg.optimizer]
    opt, comparator = names.optimizer, names.comparator
    if cfg.optimizer == "gd":
        method = f"full-batch GD at h = {cfg.lr} (2/h = {2 / cfg.lr:g})"
        below = f"Gradient flow: the NGF solved to rtol {cfg.gf_rtol:g}."
    else:
        method = (
            f"full-batch RMSProp (optax, decay {cfg.decay:g}, eps 1e-8) at h = {cfg.lr} from nu_0 = g(theta_0)^2, "
            f"judged by its preconditioned sharpness lambda_max(P^-1/2 H P^-1/2), P = sqrt(nu + eps), against 2/h = "
            f"{2 / cfg.lr:g}"
        )
        below = f"{comparator}: the central flow with Sigma = 0, Euler at dt = h/20."
    setting = (
        f"{net.activation} MLP ({net.depth} hidden layer(s) of {net.width}, D = {prob.theta0.size} parameters), "
        f"{net.loss} loss on {net.n_train} images of {net.dataset} (classes {list(net.classes) or 'all'}, "
        f"pooled by {net.downsample}), {method} for {cfg.steps} steps from initialisation (seed {net.seed}). "
        f"Central flow: k = {cfg.k} tracked directions, {cfg.substeps} Euler substeps per step. {below} "
        f"{opt} is averaged by a centred moving average over {cfg.window} steps."
    )
    claim_table = markdown_table(
        verdicts, ["claim", "measure", "measured", "threshold", "verdict"], {"measured": "{:.3g}", "threshold": "{:g}"}
    )
    details = "\n".join(
        [
            f"- EoS onset ({opt}'s loss first rises): step {_fmt(m['onset'])}; {opt} at EoS on "
            f"{m['steps_at_eos']} steps; "
            f"its oscillation comes in bursts {_fmt(m['cycle_median'])} steps apart (median; the average runs "
            f"over {cfg.window} steps); "
            f"a second eigenvalue of the flow within {EDGE_REL:.0%} of 2/h from step {_fmt(m['second_at_edge'])}.",
            f"- Loss after onset: median gap {_fmt(m['loss_median_gap'])}, largest {_fmt(m['loss_largest_gap'])} "
            "(relative to the prediction).",
            f"- {opt} diverged at step {m['gd_diverged_at']}; the comparison stops before it."
            if m["gd_diverged_at"] is not None
            else f"- {opt} stayed finite over all {cfg.steps} steps.",
            f"- At step {_fmt(m['distance_step'])}: |avg {opt} - central| = {_fmt(m['distance_central'])}, "
            f"|avg {opt} - {comparator}| = {_fmt(m['distance_gradient_flow'])}.",
            f"- Solves: central flow `{m['central_status']}` ({sol.status.message}); {comparator} "
            f"`{m['gradient_flow_status']}`.",
        ]
    )
    per = f"per {opt} step"
    cost = markdown_table(
        [
            {per: "field evaluations (Euler substeps)", "value": cfg.substeps},
            {per: "gradients", "value": sol.gradients_per_step},
            {per: "HVPs (eigensolve, U^T H U), one eigenvalue at 2/h", "value": _fmt(m["cost_hvps_one"])},
            {per: "HVPs (eigensolve, U^T H U), two or more at 2/h", "value": _fmt(m["cost_hvps_two"])},
            {per: "third-derivative products (k(k+1)/2, with the basis)", "value": sol.d3_per_step},
            {per: "SDCP iterations (mean)", "value": _fmt(float(np.nanmean(sol.sdcp_iterations)))},
            {per: "CPU seconds, one eigenvalue at 2/h", "value": _fmt(m["cost_seconds_one"])},
            {per: "CPU seconds, two or more at 2/h", "value": _fmt(m["cost_seconds_two"])},
            {per: "wall-time ratio, two or more over one", "value": _fmt(m["slowdown_wall"])},
        ],
        [per, "value"],
    )
    window_table = markdown_table(
        windows,
        ["window", "fraction", "median", "largest", "verdict"],
        {k: "{:.3g}" for k in ("fraction", "median", "largest")},
    )
    return (
        f"# gdflows central\n\n{setting}\n\n## Claims\n\n{claim_table}\n\n{details}\n\n"
        f"## Cost of the central flow\n\n{cost}\n\nTimes are this run's, this process's CPU time (steadier than wall "
        "time on a shared machine), compilation excluded (the first call is left out); the HVP and SDCP counts do "
        "not depend on the machine.\n\n"
        f"## The loss claim against the averaging window\n\nFraction of steps after onset with the averaged {opt} loss "
        f"within {LOSS_REL:.0%} of the prediction:\n\n{window_table}\n\n"
        "## Figures\n\n" + "\n".join(f"![{f.stem}](figures/{f.name})" for f in figures) + "\n"
    )
