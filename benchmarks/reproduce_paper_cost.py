"""What the edge-of-stability part of ``gdflows reproduce --scale paper`` costs, in FLOPs and minutes.

For every train run of :func:`gdflows.experiments.eos_conv.train_configs` at the
paper plan's size (``gdflows eos-conv --size accelerator``):

* XLA's FLOP count (machine-independent) of one full-batch gradient and one
  Hessian-vector product on the plan's training set, compiled ahead of time
  over the whole batch at once (the chunked loss is a ``lax.scan``, whose body
  XLA's cost analysis counts once) and never run;
* measured on ``--small-n`` images (the count depends on N only through the
  spectrum): the HVPs of one cold diagnosis (k and tol as the plan has them;
  warm-started diagnoses during training use fewer);
* extrapolated: train = steps gradients + diagnoses (HVPs + 3 gradients).

The minutes column divides by ``--tflops``, a sustained float64 rate the
reader supplies (the default 20 TFLOP/s is an assumption for an H100-class
GPU running these small convolutions, not a measurement).
Prints a Markdown table:

    .venv/bin/python benchmarks/reproduce_paper_cost.py --data-dir DIR
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp

from gdflows.curvature import hvp
from gdflows.diagnosis import diagnose
from gdflows.experiments.eos_conv import train_configs
from gdflows.experiments.report.flops import flops
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.reproduce import scale_plan
from gdflows.experiments.train import log_steps

jax.config.update("jax_enable_x64", True)  # the plan's runs are float64


def net_costs(net, lr: float, k: int, tol: float, small_n: int) -> dict:
    """GFLOPs of a gradient and an HVP over the whole training set; HVPs of a cold diagnosis on small_n images."""
    problem = net.build()
    theta, x, y = problem.theta0, jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
    loss = lambda th: problem.batch_loss(th, x, y)  # noqa: E731
    gf_grad = flops(jax.jit(jax.grad(loss)).lower(theta).compile()) / 1e9
    gf_hvp = flops(jax.jit(lambda th: hvp(loss, th, th)).lower(theta).compile()) / 1e9
    small = dataclasses.replace(net, n_train=small_n).build()
    hvps = diagnose(small.loss, small.theta0, lr, k, tol=tol).hvps
    print(f"{net.model}: D = {theta.size}, gradient {gf_grad:.1f} GFLOP, HVP {gf_hvp:.1f} GFLOP, {hvps} HVPs")
    return {"D": theta.size, "gflop_grad": gf_grad, "gflop_hvp": gf_hvp, "hvps": hvps}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=None, help="Fashion-MNIST folder (default: Debian's)")
    parser.add_argument("--tflops", type=float, default=20.0, help="sustained float64 TFLOP/s of the device")
    parser.add_argument("--small-n", type=int, default=100)
    args = parser.parse_args()
    plan = scale_plan("paper", args.data_dir)
    cfg = plan.eos.resolved()
    rows, costs = [], {}
    for train in train_configs(plan.eos_config(Path("unused"))):
        if train.net.model not in costs:
            costs[train.net.model] = net_costs(train.net, train.lr, cfg.k, cfg.tol, args.small_n)
        c = costs[train.net.model]
        logs = len(log_steps(train, 0))
        gflop = train.steps * c["gflop_grad"] + logs * (c["hvps"] * c["gflop_hvp"] + 3 * c["gflop_grad"])
        rows.append(
            {
                "run": train.out.name,
                "D": c["D"],
                "work": f"{train.steps} steps, {logs} diagnoses",
                "GFLOP/gradient": f"{c['gflop_grad']:.1f}",
                "GFLOP/HVP": f"{c['gflop_hvp']:.1f}",
                "HVPs/diagnosis": c["hvps"],
                "PFLOP": f"{gflop / 1e6:.2f}",
                f"minutes at {args.tflops:g} TFLOP/s": f"{gflop / 1e3 / args.tflops / 60:.1f}",
            }
        )
    print(markdown_table(rows, list(rows[0]), default=str))


if __name__ == "__main__":
    main()
