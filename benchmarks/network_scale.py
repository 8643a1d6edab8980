"""A conv net on full Fashion-MNIST: time and memory of one problem's training step, full loss and diagnosis.

Builds ``network_problem`` (VGG width 16 by default, float32) on the 60,000
training images and times, each call measured after its compilation:

* one minibatch SGD step (batch 128);
* one full-training-set loss and accuracy (60,000 images, chunked);
* one diagnosis (top-k eigenpairs + the PF's dE/dt) on the curvature subset,
  cold (first call: compilation included, as a run's first row pays it) and
  warm-started from the first;
* the peak resident memory of the process.

Needs Debian's dataset-fashion-mnist (``make data``). Run:

    PYTHONPATH=src .venv/bin/python benchmarks/network_scale.py [--model vgg --width 16 --curvature 1000]

Times are printed as wall-clock and CPU seconds (all threads of the process):
on a machine shared with other work the CPU seconds are the cost, and
CPU / cores is the wall time the call would take with the cores to itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import jax
import numpy as np
import optax

from gdflows.data import load_dataset
from gdflows.experiments.network_setup import diagnose_network
from gdflows.experiments.steps import network_steps
from gdflows.problems.network import network_problem


class Took:
    """Wall-clock and CPU seconds (all threads) of one call: on a shared machine the CPU time
    says what the work costs, the wall time what this run waited."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def __format__(self, spec: str) -> str:
        return f"{self.wall:{spec or '.1f'}} s wall ({self.cpu:{spec or '.1f'}} s CPU)"


def seconds(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    return out, Took(time.perf_counter() - wall, time.process_time() - cpu)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--curvature", type=int, default=1000, help="curvature subset size")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--lr", type=float, default=0.02, help="learning rate of the diagnosis (0.02: h lambda_0 about 2 at the start)"
    )
    ap.add_argument("--k", type=int, default=2)
    args = ap.parse_args()

    start, cpu0 = time.perf_counter(), time.process_time()
    data = load_dataset("fashion_mnist", dtype="float32")
    problem = network_problem(
        args.model, data, dtype="float32", curvature_size=args.curvature, width=args.width, activation="tanh"
    )
    built = Took(time.perf_counter() - start, time.process_time() - cpu0)
    print(
        f"{args.model}{args.width} float32: D = {problem.theta0.size}, N = {len(data.y_train)}, "
        f"chunk {problem.chunk_size}, curvature subset {len(problem.curvature_index)}, tol {problem.tol:.1e}, "
        f"devices {problem.mesh.devices.size} ({jax.devices()[0].platform}); load + build {built}, "
        f"peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )

    opt = optax.sgd(0.05)
    run = network_steps(problem, opt)
    state = opt.init(problem.theta0)
    idx = np.random.default_rng(0).integers(0, len(data.y_train), (1, args.batch))
    (theta, state, _, _), first = seconds(run, problem.theta0, state, idx)
    (theta, state, _, _), step = seconds(run, theta, state, idx)
    print(f"minibatch step (batch {args.batch}): {step:.3f} (first call, compiling: {first})", flush=True)

    (loss, acc), first = seconds(problem.evaluate, theta)
    (loss, acc), full = seconds(problem.evaluate, theta)
    print(f"full loss + accuracy, 60,000 images: {full} (first call {first}); E = {float(loss):.4f}")
    print(f"peak RSS so far {peak_rss_gib():.2f} GiB", flush=True)

    _, hvp_first = seconds(problem.hvp, theta, theta, True)
    _, hvp = seconds(problem.hvp, theta, theta, True)
    print(f"one HVP on the curvature subset: {hvp:.2f} (first call {hvp_first})", flush=True)

    d, cold = seconds(problem.diagnose, theta, args.lr, args.k)
    print(
        f"diagnosis k={args.k} cold: {cold}, {d.hvps} HVPs, lambda = {np.round(np.real(d.eigenvalues), 3)} "
        f"(h lambda_0 = {args.lr * float(np.real(d.eigenvalues[0])):.2f}), "
        f"dE/dt = {np.real(d.energy_rate):.3e} (PF converged {d.pf_converged})",
        flush=True,
    )
    _, again = seconds(problem.diagnose, theta, args.lr, args.k)
    print(f"diagnosis, same theta again (compiled): {again}", flush=True)
    (theta, state, _, _), _ = seconds(run, theta, state, idx)
    d, warm = seconds(lambda th: diagnose_network(problem, th, args.lr, args.k, warm_start=d.vectors), theta)
    print(f"diagnosis after one more step, warm-started: {warm}, {d.hvps} HVPs", flush=True)
    total = Took(time.perf_counter() - start, time.process_time() - cpu0)
    print(f"peak RSS {peak_rss_gib():.2f} GiB; total {total:.0f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
