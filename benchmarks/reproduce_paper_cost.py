"""What ``gdflows reproduce --scale paper`` costs: FLOPs, and hours on this machine.

No CIFAR-10 ships with gdflows, so the paper plan's nets are built on random
images in the CIFAR-10 batch format (a step's cost does not depend on the
pixels; :func:`gdflows.data.cifar10.write_random_batches`). For every sub-run
of :data:`gdflows.experiments.reproduce.SCALES["paper"]`:

* measured on the real training-set size (5,000 images): one full-batch
  gradient (``t_grad``) and one Hessian-vector product (``t_hvp``), compiled
  ahead of time, one call each; their FLOPs by XLA's cost analysis (machine-independent);
* measured on 100 images (the count depends on N only through the
  spectrum, and the full-size solve would take hours here): the HVPs of one cold diagnosis
  (``diagnose``, k = 2, tol 1e-7; warm-started diagnoses during training
  use fewer) and the gradient evaluations of one NGF solve over time h
  (the drift's reference);
* extrapolated: train = steps t_grad + logs (hvps t_hvp + 3 t_grad); drift,
  per rate = steps t_grad + points (ngf_evals + 1) t_grad + points t_hvp;
  DAL (compare-optimizers at scale 4, MNIST subset) is run for real.

Prints a table and writes it as Markdown with ``--out``:

    .venv/bin/python benchmarks/reproduce_paper_cost.py --out docs/reproduction/PAPER_SCALE.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import jax

import gdflows
from aot_timing import timed_compiled
from gdflows.curvature import hvp
from gdflows.data.cifar10 import write_random_batches
from gdflows.diagnosis import diagnose
from gdflows.experiments.optimizers.compare import CompareOptimizersConfig
from gdflows.experiments.report.flops import flops
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.reproduce import DAL_METHODS, scale_plan
from gdflows.experiments.train import TrainConfig, log_steps

jax.config.update("jax_enable_x64", True)  # the benchmarks compare float64 accuracy

SMALL_N = 100


def compiled(fn, *args):
    """(seconds of one call, GFLOPs) of ``fn`` compiled ahead of time."""
    _, seconds, run = timed_compiled(jax.jit(fn), *args)
    return seconds, flops(run) / 1e9


def net_costs(net, lr: float) -> dict:
    """t_grad, t_hvp (and GFLOPs) at the net's size; diagnosis HVPs and NGF evaluations on SMALL_N images."""
    problem = net.build()
    theta = problem.theta0
    t_grad, gf_grad = compiled(jax.value_and_grad(problem.loss), theta)
    t_hvp, gf_hvp = compiled(lambda th: hvp(problem.loss, th, th), theta)
    small = dataclasses.replace(net, n_train=SMALL_N).build()
    hvps = diagnose(small.loss, small.theta0, lr, 2, tol=1e-7).hvps
    ngf = gdflows.integrate(gdflows.flows.ngf(small.loss), small.theta0, lr, 1, rtol=1e-10, atol=1e-12)
    print(
        f"{net.model}: D = {theta.size}, gradient {t_grad:.1f} s, HVP {t_hvp:.1f} s, "
        f"{hvps} HVPs per diagnosis, {ngf.num_field_evals} gradients per NGF solve",
        flush=True,
    )
    return {
        "D": theta.size,
        "t_grad": t_grad,
        "gflop_grad": gf_grad,
        "t_hvp": t_hvp,
        "gflop_hvp": gf_hvp,
        "diagnosis_hvps": hvps,
        "ngf_evals": ngf.num_field_evals,
    }


def train_cost(c: dict, steps: int, logs: int) -> tuple[float, float]:
    """(seconds, GFLOPs) of a train run: steps gradients + logs diagnoses."""
    per_log = (
        c["diagnosis_hvps"] * c["t_hvp"] + 3 * c["t_grad"],
        c["diagnosis_hvps"] * c["gflop_hvp"] + 3 * c["gflop_grad"],
    )
    return steps * c["t_grad"] + logs * per_log[0], steps * c["gflop_grad"] + logs * per_log[1]


def drift_cost(c: dict, steps: int, points: int) -> tuple[float, float]:
    grads = steps + points * (c["ngf_evals"] + 1)
    return grads * c["t_grad"] + points * c["t_hvp"], grads * c["gflop_grad"] + points * c["gflop_hvp"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    out = parser.parse_args().out
    tmp = Path(tempfile.mkdtemp())
    plan = scale_plan("paper", write_random_batches(tmp / "cifar", per_batch=1000).parent)
    rows, costs = [], {}
    for eos in plan.eos:
        c = _cached(costs, eos.net, eos.lrs[0])
        for lr in eos.lrs:
            logs = len(log_steps(TrainConfig(steps=eos.steps, log_every=eos.log_every), 0))
            seconds, gflop = train_cost(c, eos.steps, logs)
            rows.append(
                _row(f"train {eos.net.model} h={lr}", c, f"{eos.steps} steps, {logs} diagnoses", seconds, gflop)
            )
    c = _cached(costs, plan.drift_net, plan.drift_lrs[0])
    points = len(range(0, plan.drift_steps, plan.drift_every))
    seconds, gflop = drift_cost(c, plan.drift_steps, points)
    n = len(plan.drift_lrs)
    rows.append(
        _row(
            f"drift {plan.drift_net.model}",
            c,
            f"{n} rates x ({plan.drift_steps} steps, {points} points)",
            n * seconds,
            n * gflop,
        )
    )
    start = time.perf_counter()
    CompareOptimizersConfig(
        out=tmp / "dal", models=("mlp",), regimes=("full",), methods=DAL_METHODS, scale=plan.dal_scale
    ).run()
    rows.append(
        {
            "sub-run": "DAL (compare-optimizers, scale 4, MNIST subset)",
            "D": "",
            "work": "run for real",
            "grad s": "",
            "HVP s": "",
            "HVPs/diagnosis": "",
            "PFLOP": "",
            "hours here": f"{(time.perf_counter() - start) / 3600:.2f}",
        }
    )
    total = sum(float(r["hours here"]) for r in rows)
    rows.append(
        dict.fromkeys(rows[0], "")
        | {
            "sub-run": "total",
            "hours here": f"{total:.1f}",
            "PFLOP": f"{sum(float(r['PFLOP'] or 0) for r in rows):.1f}",
        }
    )
    table = markdown_table(
        rows, ["sub-run", "D", "work", "grad s", "HVP s", "HVPs/diagnosis", "PFLOP", "hours here"], default=str
    )
    device = f"{jax.devices()[0].platform} ({jax.device_count()} device(s), {_cores()} cores)"
    text = (
        "# Expected cost of `gdflows reproduce --scale paper`\n\n"
        f"Written by `benchmarks/reproduce_paper_cost.py` on {device}; see its docstring for what is measured "
        "and what is extrapolated. PFLOP (XLA's count) does not depend on the machine: divide by a device's "
        "sustained float64 FLOP/s for its run time. Not yet run on an accelerator.\n\n" + table + "\n"
    )
    print(text)
    if out is not None:
        out.write_text(text)


def _cached(costs: dict, net, lr: float) -> dict:
    """net_costs once per net (the drift runs on an edge-of-stability net)."""
    if net not in costs:
        costs[net] = net_costs(net, lr)
    return costs[net]


def _row(name, c, work, seconds, gflop) -> dict:
    return {
        "sub-run": name,
        "D": c["D"],
        "work": work,
        "grad s": f"{c['t_grad']:.2f}",
        "HVP s": f"{c['t_hvp']:.2f}",
        "HVPs/diagnosis": c["diagnosis_hvps"],
        "PFLOP": f"{gflop / 1e6:.1f}",
        "hours here": f"{seconds / 3600:.1f}",
    }


def _cores() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
