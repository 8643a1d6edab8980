"""Time per step of DAL (each hg mode) relative to plain SGD, side by side.

Same model, same batch, one jitted step each (gradient + optimizer update);
the methods are timed in interleaved rounds so machine load hits all alike.
Prints median seconds per step and the ratio to SGD (goals: hvp <= 2.5x,
secant <= 1.1x). Usage: python benchmarks/dal_overhead.py [--model mlp|cnn]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

from gdflows.data import load_dataset
from gdflows.optim import dal
from gdflows.problems.network import network_problem

jax.config.update("jax_enable_x64", True)  # the benchmarks compare float64 accuracy


def make_step(problem, opt, x, y):
    def step(theta, state):
        loss = lambda t: problem.batch_loss(t, x, y)  # noqa: E731
        g = jax.grad(loss)(theta)
        update, state = opt.update(g, state, theta, value_fn=loss)
        return optax.apply_updates(theta, update), state

    return jax.jit(step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    args = parser.parse_args()
    data = load_dataset("mnist_subset", n_train=args.batch)
    kwargs = {"width": 256, "depth": 2} if args.model == "mlp" else {"width": 8}
    problem = network_problem(args.model, data, **kwargs)
    x, y = jax.numpy.asarray(data.x_train), jax.numpy.asarray(data.y_train)
    opts = {"sgd": optax.sgd(0.1), "hvp": dal(hg="hvp"), "fd": dal(hg="fd"), "secant": dal(hg="secant", fixed_lr=0.1)}
    steps = {k: make_step(problem, o, x, y) for k, o in opts.items()}
    carry = {k: (problem.theta0, o.init(problem.theta0)) for k, o in opts.items()}
    for k in opts:  # compile
        jax.block_until_ready(steps[k](*carry[k]))
    times = {k: [] for k in opts}
    for _ in range(args.rounds):
        for k in opts:
            start = time.perf_counter()
            for _ in range(args.steps):
                carry[k] = steps[k](*carry[k])
            jax.block_until_ready(carry[k])
            times[k].append((time.perf_counter() - start) / args.steps)
    base = np.median(times["sgd"])
    print(
        f"model={problem.model.name} params={problem.theta0.size} batch={args.batch} device={jax.devices()[0].platform}"
    )
    for k, t in times.items():
        print(f"{k:>7}: {np.median(t) * 1e3:8.3f} ms/step  ratio {np.median(t) / base:5.2f}x")


if __name__ == "__main__":
    main()
