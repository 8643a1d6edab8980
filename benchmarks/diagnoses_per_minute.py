"""Diagnoses per CPU-minute on the conv nets of ``gdflows eos-conv``: one number per net, for comparing versions.

The eos-conv setting at CPU size: width-4 tanh VGG- and ResNet-style nets, float64, MSE, 1,000 training images
pooled to 14 x 14 (the bundled MNIST subset: Fashion-MNIST's shapes, no download), ``gdflows.diagnose`` at the
net's initialisation with k = 2, tol 1e-7, max_size 100, h = 0.1 (VGG) and 0.15 (ResNet). Each diagnosis
starts cold (no warm start: the same work every time); the first, which compiles, is off the clock. Printed
per net: the median CPU seconds (``time.process_time``, all threads) and wall seconds of ``--repeats``
diagnoses, their min-max, the HVPs of one diagnosis, and diagnoses per CPU-minute.

To compare two versions, run it with each version's sources, alternating, e.g. the code before the
curvature-speed work and now:

    git worktree add /tmp/before 7107d23
    for i in 1 2 3; do
      PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/diagnoses_per_minute.py
      PYTHONPATH=src .venv/bin/python benchmarks/diagnoses_per_minute.py
    done

It uses only API that both have (``load_dataset``, ``downsample``, ``network_problem``, ``diagnose``).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

RATES = {"vgg": 0.1, "resnet": 0.15}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tuple(RATES), default=list(RATES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=1000)
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import gdflows
    from gdflows import diagnose
    from gdflows.data import load_dataset
    from gdflows.data.dataset import downsample
    from gdflows.problems.network import network_problem

    data = downsample(load_dataset("mnist_subset", n_train=args.n_train, n_test=100), 2)
    print(f"gdflows from {gdflows.__file__}")
    for model in args.models:
        problem = network_problem(model, data, loss="mse", dtype="float64", width=4)
        theta = problem.theta0

        once = functools.partial(diagnose, problem.curvature_loss, theta, RATES[model], 2, tol=1e-7, max_size=100)
        result = once()  # compiles
        cpu, wall = [], []
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            result = once()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        print(
            f"{model}: D = {theta.size:,}, {result.hvps} HVPs per diagnosis; CPU {np.median(cpu):.2f} s "
            f"[{min(cpu):.2f}, {max(cpu):.2f}], wall {np.median(wall):.2f} s [{min(wall):.2f}, {max(wall):.2f}]: "
            f"{60 / np.median(cpu):.1f} diagnoses per CPU-minute",
            flush=True,
        )


if __name__ == "__main__":
    main()
