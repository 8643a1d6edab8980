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

``--pf-step`` prices the PF's own one-step prediction (``diagnose(..., pf_step=True)``, ``gdflows eos-conv
--pf-step``): each repeat times a diagnosis without it and one with it, interleaved, and the ratio of the
medians is printed. ``--dtype float32 --tol 1e-4 --lr 0.03`` is the eos-conv VGG design's setting.

``--state CHECKPOINT.npz`` times the diagnoses at a trained state instead of the initialisation: the ``theta``
of a ``gdflows train`` / ``eos-conv`` run's checkpoint (``<run>/checkpoint.npz``), with the run's data
(``--dataset fashion_mnist`` for eos-conv) and rate. At the edge the PF's field is complex along the one-step
solve, which is what makes ``--pf-step`` dearer there than at initialisation:

    .venv/bin/python benchmarks/diagnoses_per_minute.py --models resnet --dtype float32 --tol 1e-4 \
        --lr 0.025 --pf-step --dataset fashion_mnist --state <resnet_lr0.025_s1>/checkpoint.npz
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
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--tol", type=float, default=1e-7)
    parser.add_argument("--lr", type=float, default=None, help="the rate h (default: 0.1 VGG, 0.15 ResNet)")
    parser.add_argument("--pf-step", action="store_true", help="also time diagnoses with pf_step=True, interleaved")
    parser.add_argument("--dataset", choices=("mnist_subset", "fashion_mnist"), default="mnist_subset")
    parser.add_argument("--state", default=None, help="a run's checkpoint.npz: diagnose at its theta (one model)")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import gdflows
    from gdflows import diagnose
    from gdflows.data import load_dataset
    from gdflows.data.dataset import downsample
    from gdflows.problems.network import network_problem

    if args.state and len(args.models) != 1:
        parser.error("--state is one model's checkpoint: pass --models with that one model")
    data = downsample(load_dataset(args.dataset, n_train=args.n_train, n_test=100), 2)
    print(f"gdflows from {gdflows.__file__}")
    for model in args.models:
        problem = network_problem(model, data, loss="mse", dtype=args.dtype, width=4)
        theta = problem.theta0 if args.state is None else jnp.asarray(np.load(args.state)["theta"], args.dtype)
        if theta.shape != problem.theta0.shape:
            parser.error(f"--state holds {theta.size:,} parameters, the {model} has {problem.theta0.size:,}")
        # pf_step is passed only when set, so a version without it still runs the plain timing
        variants = {False: {}, True: {"pf_step": True}} if args.pf_step else {False: {}}
        kinds = tuple(variants)
        h = args.lr or RATES[model]
        once = {
            step: functools.partial(diagnose, problem.curvature_loss, theta, h, 2, tol=args.tol, max_size=100, **extra)
            for step, extra in variants.items()
        }
        results = {step: f() for step, f in once.items()}  # compiles
        cpu, wall = {step: [] for step in kinds}, {step: [] for step in kinds}
        for _ in range(args.repeats):
            for step in kinds:
                c0, w0 = time.process_time(), time.perf_counter()
                results[step] = once[step]()
                cpu[step].append(time.process_time() - c0)
                wall[step].append(time.perf_counter() - w0)
        for step in kinds:
            c, w = cpu[step], wall[step]
            print(
                f"{model}{' with pf_step' if step else ''}: D = {theta.size:,}, {results[step].hvps} HVPs per "
                f"diagnosis; CPU {np.median(c):.2f} s [{min(c):.2f}, {max(c):.2f}], wall {np.median(w):.2f} s "
                f"[{min(w):.2f}, {max(w):.2f}]: {60 / np.median(c):.1f} diagnoses per CPU-minute",
                flush=True,
            )
        if args.pf_step:
            status = results[True].pf_step_status
            ratio = np.median(cpu[True]) / np.median(cpu[False])
            print(f"{model}: pf_step costs {ratio:.1f}x a diagnosis' CPU time (its solve: {status})", flush=True)


if __name__ == "__main__":
    main()
