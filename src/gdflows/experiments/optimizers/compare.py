"""``gdflows compare-optimizers``: DAL against the optimizers people use.

``--scale cpu|full|smoke`` runs :mod:`gdflows.experiments.optimizers.field`
(conv nets on Fashion-MNIST); ``--scale <number>`` the MNIST-subset comparison below.

For each model (tanh MLP; small tanh CNN on 2x-downsampled images), regime
(full batch; minibatch) and seed, every method of
:mod:`gdflows.experiments.optimizers.zoo` trains from the same initialisation.
Per run: final full training loss, test accuracy, steps to reach
``loss_target`` (full batch: per step; minibatch: at the logged full-loss
evaluations), loss spikes (:func:`~gdflows.experiments.optimizers.metrics.count_spikes`
on the per-step loss in full batch, on the logged full loss in minibatch, so
batch noise is not counted), divergence, wall time per step, FLOPs per step
(XLA's cost analysis of the compiled step: a machine-independent cost), and
for seed 0 of the DAL runs h_t beside 2/lambda_0 of the full loss.

Output (a run folder): ``results.csv`` (one row per run), ``curves.csv``
(logged points), ``summary.csv`` (mean over seeds), figures, ``REPORT.md``.
Rerunning with the same config skips the runs already in ``results.csv``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.data import load_dataset
from gdflows.data.dataset import downsample
from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import QUICK_METHODS, CompareOptimizersConfig
from gdflows.experiments.errors import RunInterrupted
from gdflows.experiments.optimizers import field, field_report
from gdflows.experiments.optimizers import report as optimizer_report
from gdflows.experiments.optimizers.metrics import count_spikes, steps_to_target
from gdflows.experiments.optimizers.run import make_sharpness, train
from gdflows.experiments.optimizers.zoo import methods
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.experiments.steps import batch_schedule, step_flops, step_rate, step_scan
from gdflows.optim import DAL_FAMILIES
from gdflows.problems.network import network_problem

MODEL_KWARGS = {"mlp": {"depth": 2, "width": 32, "activation": "tanh"}, "cnn": {"width": 4, "activation": "tanh"}}
KEY = ("model", "regime", "method", "seed")

__all__ = ["CompareOptimizersConfig", "QUICK_METHODS", "run", "compare"]


def run(cfg: CompareOptimizersConfig) -> Path:
    """``gdflows compare-optimizers``: every run not yet in ``results.csv``, then the report, into ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    resolved = cfg.resolved()
    plan = field.plan_for(resolved) if resolved.at_scale else None
    # an unknown method name is refused before the folder exists
    field.selected(plan, resolved.methods) if plan else _selected(resolved)
    folder.create()
    try:
        field.compare(resolved, folder, plan) if plan else compare(resolved, folder)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted: {folder.path}/results.csv keeps the runs finished so far; rerun the same command to resume"
        ) from None
    field_report.write(folder, resolved, plan) if plan else optimizer_report.write(folder, resolved)
    folder.finish()
    print(f"report: {folder.file('REPORT.md')}")
    return folder.path


def _data(cfg, model: str):
    n = cfg.mlp_n_train if model == "mlp" else cfg.cnn_n_train
    data = load_dataset("mnist_subset", n_train=n, dtype=cfg.dtype)
    return downsample(data, cfg.cnn_downsample) if model == "cnn" else data


def _selected(cfg):
    all_methods = methods(
        sweep=cfg.lrs,
        ps=cfg.ps,
        hg_modes=cfg.hg_modes,
        max_lr=cfg.max_lr,
        secant_lr=cfg.secant_lr,
        rates={"momentum": cfg.momentum_lr, "adam": cfg.adam_lr},
    )
    if not cfg.methods:
        return all_methods
    unknown = set(cfg.methods) - {m.name for m in all_methods}
    if unknown:
        raise GDFlowsError(f"unknown methods {sorted(unknown)}; known: {[m.name for m in all_methods]}")
    return [m for m in all_methods if m.name in cfg.methods]


def _row(cfg, key, method, curve, theta, facts, problem, data):
    final = curve.loss[-1]
    full = key[1] == "full"
    losses, steps = (curve.step_loss, range(len(curve.step_loss))) if full else (curve.loss, curve.steps)
    tail = [h for s, h in zip(curve.steps, curve.h) if s >= 2 * cfg.steps / 3 and np.isfinite(h)]
    acc = problem.accuracy(theta, jnp.asarray(data.x_test), jnp.asarray(data.y_test))
    ok = facts["diverged_at"] is None  # a diverged run's last loss may be finite (above the divergence bound)
    return dict(zip(KEY, key)) | {
        "family": method.family,
        "lr": method.lr if method.lr is not None else "",
        "final_train_loss": final,
        "test_acc": float(acc) if ok else np.nan,
        "steps_to_target": steps_to_target(list(steps) + [curve.steps[-1]], list(losses) + [final], cfg.loss_target),
        "spikes": count_spikes(losses if ok else list(losses) + [np.nan]),
        "diverged": facts["diverged_at"] is not None,
        "diverged_at": facts["diverged_at"] or "",
        "mean_h_last_third": float(np.mean(tail)) if tail else np.nan,
        "final_two_over_lambda0": curve.two_over_lambda0[-1],
        "time_s": facts["time_s"],
        "ms_per_step": facts["ms_per_step"],
        "flops_per_step": facts["flops_per_step"],
    }


def _curve_rows(key, curve):
    return [
        dict(zip(KEY, key)) | {"step": s, "loss": loss, "h": h, "two_over_lambda0": t}
        for s, loss, h, t in zip(curve.steps, curve.loss, curve.h, curve.two_over_lambda0)
    ]


def compare(cfg, run: Run) -> None:
    """Train every (model, regime, method, seed) not yet in ``results.csv``."""
    rows, curves = run.read_keyed("results", "curves", KEY)
    done = {tuple(r[k] for k in KEY) for r in rows}
    chosen = _selected(cfg)
    todo = [
        (m, r, meth, s)
        for m in cfg.models
        for r in cfg.regimes
        for meth in chosen
        for s in range(cfg.seeds)
        if (m, r, meth.name, str(s)) not in done
    ]
    compiled = {}
    for model, regime, method, seed in track(todo, "compare optimizers", total=len(todo)):
        data = _data(cfg, model)
        problem = network_problem(model, data, loss=cfg.loss, seed=seed, dtype=cfg.dtype, **MODEL_KWARGS[model])
        ck = (model, regime, method.name)
        batch_size = None if regime == "full" else cfg.batch_size
        xy = (jnp.asarray(data.x_train), jnp.asarray(data.y_train))
        if ck not in compiled:
            opt = method.make()
            chunk = step_scan(opt, problem.batch_loss, record=functools.partial(step_rate, lr=method.lr))
            one = jnp.asarray(batch_schedule(len(data.y_train), batch_size, 1, seed))
            compiled[ck] = (opt, chunk, step_flops(chunk, problem.theta0, opt.init(problem.theta0), *xy, one))
        opt, chunk, flops = compiled[ck]
        if ("eig", model) not in compiled:
            compiled[("eig", model)] = make_sharpness(problem.batch_loss, cfg.lambda_tol)
            compiled[("loss", model)] = jax.jit(problem.batch_loss)
        track_eig = seed == 0 and method.family in DAL_FAMILIES
        curve, theta, facts = train(
            chunk,
            opt,
            problem.theta0,
            xy,
            cfg.steps,
            cfg.log_every,
            batch_size,
            seed,
            compiled[("loss", model)],
            compiled[("eig", model)] if track_eig else None,
        )
        key = (model, regime, method.name, seed)
        rows.append(_row(cfg, key, method, curve, theta, facts | {"flops_per_step": flops}, problem, data))
        curves += _curve_rows(key, curve)
        run.write_keyed("results", rows, "curves", curves)
