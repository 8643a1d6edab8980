"""``gdflows compare-optimizers``: DAL against the optimizers people use, one pipeline for every ``--scale``.

What is trained comes from the scale's plan (:mod:`gdflows.experiments.optimizers.plans`): its method list, or
at ``--scale tuned`` the tuning protocol's runs, asked for phase by phase from the results so far
(:mod:`gdflows.experiments.optimizers.tuning`). Per net, regime,
method and seed, a run trains from the seed's initialisation through the one driver
(:func:`gdflows.experiments.driver.drive`) on the one step scan
(:func:`gdflows.experiments.steps.network_steps`: the data on the device mesh, full-batch steps chunked);
every method of a seed starts from the same parameters and sees the same batches. Each step hands the
optimizer its batch's loss and the batch loss function (``value``, ``value_fn``), so DAL, CDAT and Polyak
see the batch the gradient came from.

At every logged point: the training time so far (wall and process CPU, steps only: a step program is
compiled and run once before the clock starts), the mean batch loss of the steps since the last point, the
last step's rate, test loss and accuracy over the test set at the parameters the method reports (for
schedule-free, its averaged iterate), and, where the plan asks, the full training loss and (seed 0 of the
DAL families) lambda_0 of the full training loss (:func:`make_sharpness`, warm-started). A run stops at
the first diverged batch or logged training loss (:mod:`gdflows.experiments.divergence`). At the end: full
training loss and accuracy; where the plan sets a loss target, the steps to reach it and the loss spikes
(:mod:`gdflows.experiments.optimizers.metrics`; full batch: per step, minibatch: at the logged full loss, so
batch noise is not counted). FLOPs per step: XLA's cost analysis of one step.

Output (a run folder): ``results.csv`` (one row per run), ``curves.csv`` (the logged points), then the
plan's report (tables, figures, REPORT.md). A rerun skips the runs already in ``results.csv``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.data import load_dataset
from gdflows.data.dataset import downsample, split_validation
from gdflows.experiments.configs import QUICK_METHODS, CompareOptimizersConfig
from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.driver import Chunk, TrainState, drive, warm_up
from gdflows.experiments.errors import RunInterrupted
from gdflows.experiments.optimizers import field_report, tuned_report
from gdflows.experiments.optimizers import report as subset_report
from gdflows.experiments.optimizers.metrics import count_spikes, steps_to_target
from gdflows.experiments.optimizers.plans import Net, Plan, plan_for
from gdflows.experiments.optimizers.tuning import next_jobs
from gdflows.experiments.optimizers.zoo import Method
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.experiments.report.timings import timed
from gdflows.experiments.steps import batch_schedule, network_steps, step_flops, step_rate, step_scan
from gdflows.optim import DAL_FAMILIES
from gdflows.params import ravel
from gdflows.problems.network import network_problem

KEY = ("model", "regime", "method", "seed")
REPORTS = {"field": field_report.write, "subset": subset_report.write, "tuned": tuned_report.write}

__all__ = ["CompareOptimizersConfig", "QUICK_METHODS", "run", "compare", "train_run", "make_sharpness"]


def run(cfg: CompareOptimizersConfig) -> Path:
    """``gdflows compare-optimizers``: every run not yet in ``results.csv``, then the report, into ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    resolved = cfg.resolved()
    plan = plan_for(resolved)
    plan.selected(resolved.methods)  # an unknown method name is refused before the folder exists
    folder.create()
    try:
        compare(resolved, folder, plan)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted: {folder.path}/results.csv keeps the runs finished so far; rerun the same command to resume"
        ) from None
    REPORTS[plan.report](folder, resolved, plan)
    folder.finish()
    print(f"report: {folder.file('REPORT.md')}")
    return folder.path


def make_sharpness(loss, tol: float):
    """jit(theta, v, x, y) -> (lambda_0, u_0) of ``loss(theta, x, y)``, warm-started from v.

    The one top-eigenpair dispatch of gdflows (:func:`gdflows.curvature.top_eigenpairs`):
    dense for small D, Lanczos from v above.
    """

    @jax.jit
    def top(theta, v, x, y):
        pairs = top_eigenpairs(lambda t: loss(t, x, y), theta, 1, tol=tol, block=v[None] / jnp.linalg.norm(v))
        return pairs.values[0], pairs.vectors[0]

    return top


def load(plan: Plan, net: Net, data_dir=None):
    """The training, validation (where the plan carves one) and test images ``net`` sees under ``plan``."""
    n_train = net.n_train + plan.n_val if net.n_train is not None and plan.n_val else net.n_train
    data = load_dataset(plan.dataset, data_dir, n_train=n_train, n_test=plan.n_test, dtype=plan.dtype)
    data = split_validation(data, plan.n_val) if plan.n_val else data
    return downsample(data, net.downsample) if net.downsample > 1 else data


def seed_theta(problem, seed: int):
    """The flat initial parameters of ``seed`` (what ``network_problem(..., seed=seed)`` starts from)."""
    return problem.replicate(ravel(problem.model.init(jax.random.PRNGKey(seed)))[0])


@dataclasses.dataclass
class Trainer:
    """One (net, regime, method): its compiled step program, warmed up off the clock, and its FLOPs per step."""

    problem: object
    plan: Plan
    method: Method
    batch_size: int | None
    sharpness: object = None  # make_sharpness of the full training loss, or None

    def __post_init__(self):
        self.opt = self.method.make()
        record = functools.partial(step_rate, lr=self.method.lr)
        self.steps = network_steps(self.problem, self.opt, record)
        n = len(self.problem.data.y_train)
        self.n_steps, self.log_every = self.plan.schedule(n, self.batch_size)
        idx = batch_schedule(n, self.batch_size, self.n_steps, 0)
        warm_up(self.steps, self.fresh(0), idx[: self.log_every])
        st = self.fresh(0)
        self.flops = step_flops(
            step_scan(self.opt, self.problem.batch_loss, record), st.theta, st.opt_state, *self.problem.train_xy, idx
        )

    def fresh(self, seed: int) -> TrainState:
        theta = seed_theta(self.problem, seed)
        return TrainState(0, theta, self.problem.replicate(self.opt.init(theta)), math.nan)

    def targets(self) -> list[int]:
        return [0] + [min(f + self.log_every, self.n_steps) for f in range(0, self.n_steps, self.log_every)]


def _test(trainer: Trainer, st: TrainState, split: str = "test") -> tuple[float, float]:
    method = trainer.method
    params = method.evaluate_at(st.opt_state, st.theta) if method.evaluate_at else st.theta
    loss, acc = trainer.problem.evaluate(params, split)
    return float(loss), float(acc)


@dataclasses.dataclass
class Log:
    """What one run logs: the points, every step's batch loss, the reference loss and the sharpness warm start."""

    trainer: Trainer
    seed: int
    start_loss: float | None
    points: list = dataclasses.field(default_factory=list)
    step_losses: list = dataclasses.field(default_factory=list)
    v: object = None

    def __call__(self, st: TrainState, chunk: Chunk | None, say) -> int | None:
        t = self.trainer
        n, batch = len(t.problem.data.y_train), t.batch_size
        point = {"step": st.step, "epoch": st.step * (batch or n) / n, "time_s": st.wall_s, "cpu_s": st.cpu_s}
        point |= {"batch_loss": "", "rate": "", "train_loss": "", "test_loss": math.nan, "test_acc": math.nan}
        point["two_over_lambda0"] = math.nan
        if chunk is not None:
            self.step_losses += chunk.values.tolist()
            point |= {"batch_loss": float(np.mean(chunk.values)), "rate": st.rate}
        self.points.append(point)
        if chunk is not None and chunk.diverged_at is not None:
            return chunk.diverged_at
        if t.plan.log_train_loss:
            point["train_loss"] = loss = float(t.problem.evaluate(st.theta, "train")[0])
            if first_divergent([loss], self.start_loss if self.start_loss is not None else loss) is not None:
                return st.step
        point["test_loss"], point["test_acc"] = _test(t, st)
        if t.problem.val_loss is not None:
            point["val_loss"], point["val_acc"] = _test(t, st, "val")
        if chunk is not None and t.sharpness is not None and self.seed == 0 and t.method.family in DAL_FAMILIES:
            lam, self.v = t.sharpness(st.theta, self.v, *t.problem.train_xy)
            point["two_over_lambda0"] = 2.0 / float(lam) if np.isfinite(lam) and lam > 0 else math.nan
        return None


def train_run(trainer: Trainer, seed: int) -> tuple[list[dict], dict]:
    """One run of ``trainer`` from ``seed``: the logged points and the run's facts (see the module)."""
    problem, plan = trainer.problem, trainer.plan
    st = trainer.fresh(seed)
    idx = batch_schedule(len(problem.data.y_train), trainer.batch_size, trainer.n_steps, seed)
    start = float(problem.evaluate(st.theta, "train")[0]) if plan.log_train_loss else None
    log = Log(trainer, seed, start, v=jax.random.normal(jax.random.PRNGKey(seed), st.theta.shape, st.theta.dtype))
    diverged_at = drive(trainer.steps, st, idx, trainer.targets(), log, start)
    train = (math.nan, math.nan) if diverged_at is not None else problem.evaluate(st.theta, "train")
    last = log.points[-1]
    return log.points, {
        "steps": last["step"],
        "epochs": last["epoch"],
        "train_loss": float(train[0]),
        "train_acc": float(train[1]),
        "test_loss": last["test_loss"],
        "test_acc": last["test_acc"],
        "test_n": len(problem.data.y_test),
        **_validation(log.points, problem, plan),
        **_progress(trainer, log, diverged_at),
        "diverged": diverged_at is not None,
        "diverged_at": "" if diverged_at is None else diverged_at,
        "time_s": st.wall_s,
        "cpu_s": st.cpu_s,
        "ms_per_step": 1e3 * st.wall_s / max(last["step"], 1),
        "flops_per_step": trainer.flops,
    }


def _validation(points: list[dict], problem, plan: Plan) -> dict:
    """The final validation loss and accuracy, the starting validation loss and the split's size (nothing
    without a validation split)."""
    if problem.val_loss is None:
        return {}
    last = points[-1]
    return {
        "val_loss": last.get("val_loss", math.nan),
        "val_acc": last.get("val_acc", math.nan),
        "val_loss_start": points[0]["val_loss"],
        "val_n": len(problem.data.y_val),
        "classes": plan.classes,
    }


def _progress(trainer: Trainer, log: Log, diverged_at) -> dict:
    """Steps to the loss target, loss spikes (full batch: per step; minibatch: the logged full loss), the mean
    rate over the last third of the steps, and the last 2/lambda_0."""
    points = log.points
    tail = [p["rate"] for p in points if p["step"] >= 2 * trainer.n_steps / 3 and p["rate"] != ""]
    out = {
        "mean_h_last_third": float(np.nanmean(tail)) if tail and np.isfinite(tail).any() else math.nan,
        "final_two_over_lambda0": points[-1]["two_over_lambda0"],
        "steps_to_target": "",
        "spikes": "",
    }
    if trainer.plan.loss_target is None:
        return out
    logged = [(p["step"], p["train_loss"]) for p in points if p["train_loss"] != ""]
    if trainer.batch_size is None:  # E_t before each step t, then the last logged loss
        steps, losses = list(range(len(log.step_losses))), list(log.step_losses)
    else:
        steps, losses = [s for s, _ in logged[:-1]], [v for _, v in logged[:-1]]
    if logged:
        steps, losses = steps + [logged[-1][0]], losses + [logged[-1][1]]
    ok = diverged_at is None
    out["steps_to_target"] = steps_to_target(steps, losses, trainer.plan.loss_target)
    out["spikes"] = count_spikes(losses if ok else losses + [math.nan])
    return out


def compare(cfg, folder: Run, plan: Plan) -> None:
    """Train every (net, regime, method, seed) of ``plan`` not yet in ``results.csv``: the plan's methods, or the
    tuning protocol's runs phase by phase (:func:`~gdflows.experiments.optimizers.tuning.next_jobs`)."""
    rows, curves = folder.read_keyed("results", "curves", KEY)
    chosen = plan.selected(cfg.methods)
    built = {}
    for net in plan.nets:
        for regime in plan.regimes:
            if plan.tuning is None:
                jobs = [(m, s) for m in chosen for s in range(cfg.seeds)]
                _train(cfg, folder, plan, built, net, regime, _pending(jobs, _of(rows, net, regime)), rows, curves)
                continue
            while jobs := next_jobs(plan.tuning, _of(rows, net, regime), cfg.seeds):
                _train(cfg, folder, plan, built, net, regime, jobs, rows, curves)


def _of(rows, net: Net, regime: str) -> list[dict]:
    return [r for r in rows if (r["model"], r["regime"]) == (net.model, regime)]


def _pending(jobs, rows) -> list:
    done = {(r["method"], str(r["seed"])) for r in rows}
    return [(m, s) for m, s in jobs if (m.name, str(s)) not in done]


def _train(cfg, folder: Run, plan: Plan, built: dict, net: Net, regime: str, jobs, rows, curves) -> None:
    """Run ``jobs`` ((method, seed) pairs) of one net and regime, appending to and writing ``rows`` and
    ``curves`` after each run; ``built`` caches each net's problem."""
    if not jobs:
        return
    if net.model not in built:
        data = load(plan, net, cfg.data_dir)
        problem = network_problem(net.model, data, loss=plan.loss, seed=0, dtype=plan.dtype, **net.kwargs)
        built[net.model] = problem, make_sharpness(problem.batch_loss, plan.lambda_tol) if plan.lambda_tol else None
    problem, sharpness = built[net.model]
    by_method = {}
    for m, seed in jobs:
        by_method.setdefault(m.name, (m, []))[1].append(seed)
    for method, seeds in track(list(by_method.values()), f"compare optimizers: {net.model}", total=len(by_method)):
        with timed(folder, f"{net.model}/{regime}/{method.name}"):
            trainer = Trainer(problem, plan, method, plan.regimes[regime], sharpness)
            _seeds(folder, trainer, {"model": net.model, "regime": regime}, seeds, rows, curves)


def _seeds(folder: Run, trainer: Trainer, where: dict, seeds, rows, curves) -> None:
    """Each seed's run of ``trainer``, its row and points appended and both tables written after each."""
    method, problem = trainer.method, trainer.problem
    for seed in seeds:
        key = where | {"method": method.name, "seed": seed}
        points, facts = train_run(trainer, seed)
        lr = "" if method.lr is None else method.lr
        rows.append(key | {"family": method.family, "lr": lr, "params": problem.theta0.size} | facts)
        curves += [key | p for p in points]
        folder.write_keyed("results", rows, "curves", curves)
