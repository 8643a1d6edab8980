"""``gdflows compare-optimizers --scale cpu|full``: DAL against the field on conv nets over Fashion-MNIST.

Per model (VGG- and ResNet-style, :mod:`gdflows.models`), method and seed,
training runs ``epochs`` epochs of minibatch steps through
:func:`gdflows.experiments.steps.network_steps` (the one step scan, the
data on the device mesh) from the seed's initialisation; every method of a seed
starts from the same parameters and sees the same batches. Each step hands the
optimizer its batch's loss and the batch loss function (``value``,
``value_fn``), so DAL, CDAT and Polyak see the batch the gradient came from.

Logged ``logs_per_epoch`` times per epoch: the training time so far (wall and
process CPU, the evaluations excluded: a step program is compiled and run once
before the clock starts), and test loss and accuracy over the whole test set
(:meth:`~gdflows.problems.network.NetworkProblem.evaluate`, chunked, so memory
stays bounded at full size), at the parameters the method reports (for
schedule-free, its averaged iterate). A run stops at the first diverged batch
loss (:mod:`gdflows.experiments.divergence`). At the end: full training loss
and accuracy. FLOPs per step: XLA's cost analysis of one step.

Output: ``results.csv`` (one row per run), ``curves.csv`` (the logged points),
then :mod:`gdflows.experiments.optimizers.field_report` writes the tables,
figures and REPORT.md. A rerun skips the runs already in ``results.csv``.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import numpy as np

from gdflows.data import load_dataset
from gdflows.data.dataset import downsample
from gdflows.errors import GDFlowsError
from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.optimizers.zoo import Method, methods
from gdflows.experiments.report.progress import track
from gdflows.experiments.report.runs import Run
from gdflows.experiments.steps import batch_schedule, network_steps, step_flops, step_rate, step_scan
from gdflows.params import ravel
from gdflows.problems.network import network_problem

PS = (1.0, 2.0)  # DAL-p exponents at scale
HG_MODES = ("hvp", "fd")
KEY = ("model", "method", "seed")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one ``--scale`` trains: data, nets, epochs and the methods' rates."""

    models: tuple  # ((name, builder kwargs), ...)
    n_train: int | None  # training images (None: all), class-balanced
    n_test: int | None  # test images (None: all)
    downsample: int  # average-pool the 28x28 images by this factor
    batch_size: int
    epochs: int
    logs_per_epoch: int  # test evaluations per epoch
    lrs: tuple  # the SGD sweep
    rates: dict  # the fixed rates of the families that take one (momentum, adam, schedule_free)
    max_lr: float  # the cap of DAL's, CDAT's and Polyak's rate
    loss: str = "cross_entropy"
    dtype: str = "float32"

    def schedule(self, n: int) -> tuple[int, int]:
        """(steps, log_every): ``logs_per_epoch`` equal chunks per epoch of n examples."""
        per_epoch = n // self.batch_size
        if per_epoch < self.logs_per_epoch:
            raise GDFlowsError(
                f"{n} training images make {per_epoch} batches of {self.batch_size} per epoch, fewer than the "
                f"{self.logs_per_epoch} evaluations per epoch; use more images or a smaller batch"
            )
        log_every = per_epoch // self.logs_per_epoch
        return self.epochs * self.logs_per_epoch * log_every, log_every


_CPU = Plan(
    models=(("vgg", {"width": 4, "hidden": 32}), ("resnet", {"width": 4, "blocks": 1})),
    n_train=5000,
    n_test=2000,
    downsample=2,
    lrs=(0.01, 0.03, 0.1, 0.3, 1.0),  # the rates: the SGD sweep, the fixed ones, the cap
    rates={"momentum": 0.03, "adam": 1e-3, "schedule_free": 0.3},
    max_lr=5.0,
    batch_size=100,  # the schedule
    epochs=3,
    logs_per_epoch=5,
)
PLANS = {
    "cpu": _CPU,
    "full": dataclasses.replace(
        _CPU,
        models=(("vgg", {"width": 16, "hidden": 128}), ("resnet", {"width": 16, "blocks": 2})),
        n_train=None,
        n_test=None,
        downsample=1,
        batch_size=128,
        epochs=5,
        logs_per_epoch=4,
    ),
    "smoke": dataclasses.replace(
        _CPU,
        models=(("vgg", {"width": 2, "hidden": 8}),),  # one net: the tests' budget
        n_train=None,
        n_test=None,
        batch_size=8,
        epochs=2,
        logs_per_epoch=2,
        lrs=(0.03, 0.3),
    ),
}


def plan_for(cfg) -> Plan:
    """The plan of ``cfg.scale``, with ``cfg.epochs`` when given."""
    plan = PLANS[cfg.scale]
    return dataclasses.replace(plan, epochs=cfg.epochs) if cfg.epochs is not None else plan


def plan_methods(plan: Plan) -> list[Method]:
    """Every method at this plan: the SGD sweep, DAL-p (hvp, fd; p in PS), DAL-momentum, DAL-Adam and the field."""
    return methods(
        sweep=plan.lrs,
        ps=PS,
        hg_modes=HG_MODES,
        max_lr=plan.max_lr,
        secant_lr=plan.lrs[0],  # no secant at scale
        rates=plan.rates,
    )


def selected(plan: Plan, names) -> list[Method]:
    """The plan's methods named in ``names`` (all when empty); an unknown name is refused."""
    every = plan_methods(plan)
    unknown = set(names) - {m.name for m in every}
    if unknown:
        raise GDFlowsError(
            f"unknown methods {sorted(unknown)}; known at this scale: {[m.name for m in every]} "
            "(--scale 1 runs the MNIST-subset comparison and its methods)"
        )
    return [m for m in every if not names or m.name in names]


def load(plan: Plan, data_dir):
    data = load_dataset("fashion_mnist", data_dir, n_train=plan.n_train, n_test=plan.n_test, dtype=plan.dtype)
    return downsample(data, plan.downsample) if plan.downsample > 1 else data


def seed_theta(problem, seed: int):
    """The flat initial parameters of ``seed`` (what ``network_problem(..., seed=seed)`` starts from)."""
    return problem.replicate(ravel(problem.model.init(jax.random.PRNGKey(seed)))[0])


def _test(problem, method: Method, theta, state) -> tuple[float, float]:
    params = method.evaluate_at(state, theta) if method.evaluate_at else theta
    loss, acc = problem.evaluate(params, "test")
    return float(loss), float(acc)


def train_run(problem, method: Method, opt, steps_fn, theta, idx, log_every: int) -> tuple[list[dict], dict]:
    """One run: the logged points (step, epoch, time_s, cpu_s, test loss/accuracy, batch loss, rate) and facts."""
    n, batch = len(problem.data.y_train), idx.shape[1]
    state = problem.replicate(opt.init(theta))
    loss, acc = _test(problem, method, theta, state)
    points = [dict(step=0, epoch=0.0, time_s=0.0, cpu_s=0.0, test_loss=loss, test_acc=acc, batch_loss="", rate="")]
    wall = cpu = 0.0
    start, diverged_at = None, None
    for first in range(0, len(idx), log_every):
        tic, ctic = time.perf_counter(), time.process_time()
        theta, state, values, rates = steps_fn(theta, state, idx[first : first + log_every])
        jax.block_until_ready((theta, state, values))
        wall, cpu = wall + time.perf_counter() - tic, cpu + time.process_time() - ctic
        values = np.asarray(values, dtype=float)
        start = values[0] if start is None else start
        bad = first_divergent(values, start)
        step = first + len(values)
        loss, acc = _test(problem, method, theta, state) if bad is None else (np.nan, np.nan)
        points.append(
            dict(
                step=step,
                epoch=step * batch / n,
                time_s=wall,
                cpu_s=cpu,
                test_loss=loss,
                test_acc=acc,
                batch_loss=float(np.mean(values)),
                rate=float(np.asarray(rates)[-1]),
            )
        )
        if bad is not None:
            diverged_at = first + bad
            break
    train = (np.nan, np.nan) if diverged_at is not None else problem.evaluate(theta, "train")
    return points, {
        "steps": points[-1]["step"],
        "train_loss": float(train[0]),
        "train_acc": float(train[1]),
        "time_s": wall,
        "cpu_s": cpu,
        "ms_per_step": 1e3 * wall / max(points[-1]["step"], 1),
        "diverged": diverged_at is not None,
        "diverged_at": "" if diverged_at is None else diverged_at,
    }


def _prepare(problem, method: Method, idx, log_every: int):
    """The method's optimizer, its jitted step program (compiled and run once, off the clock) and its FLOPs/step."""
    opt = method.make()
    record = functools.partial(step_rate, lr=method.lr)
    steps_fn = network_steps(problem, opt, record)
    theta = problem.theta0
    state = problem.replicate(opt.init(theta))
    jax.block_until_ready(steps_fn(theta, state, idx[:log_every]))
    cost = step_flops(step_scan(opt, problem.batch_loss, record), theta, state, *problem.train_xy, idx)
    return opt, steps_fn, cost


def compare(cfg, folder: Run, plan: Plan) -> None:
    """Train every (model, method, seed) not yet in ``results.csv``."""
    rows, curves = folder.read_keyed("results", "curves", KEY)
    done = {tuple(r[k] for k in KEY) for r in rows}
    chosen = selected(plan, cfg.methods)
    data = load(plan, cfg.data_dir)
    steps, log_every = plan.schedule(len(data.y_train))
    todo = [(m, kw, meth) for m, kw in plan.models for meth in chosen]
    todo = [t for t in todo if any((t[0], t[2].name, str(s)) not in done for s in range(cfg.seeds))]
    problems = {}
    for model, kwargs, method in track(todo, "compare optimizers at scale", total=len(todo)):
        if model not in problems:
            problems[model] = network_problem(model, data, loss=plan.loss, seed=0, dtype=plan.dtype, **kwargs)
        problem = problems[model]
        idx = batch_schedule(len(data.y_train), plan.batch_size, steps, 0)
        opt, steps_fn, cost = _prepare(problem, method, idx, log_every)
        for seed in range(cfg.seeds):
            if (model, method.name, str(seed)) in done:
                continue
            idx = batch_schedule(len(data.y_train), plan.batch_size, steps, seed)
            points, facts = train_run(problem, method, opt, steps_fn, seed_theta(problem, seed), idx, log_every)
            key = {"model": model, "method": method.name, "seed": seed}
            last = points[-1]
            rows.append(
                key
                | {"family": method.family, "lr": "" if method.lr is None else method.lr, "params": problem.theta0.size}
                | {"epochs": last["epoch"], "test_loss": last["test_loss"], "test_acc": last["test_acc"]}
                | facts
                | {"flops_per_step": cost}
            )
            curves += [key | p for p in points]
            folder.write_keyed("results", rows, "curves", curves)
