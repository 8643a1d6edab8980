"""Where an HVP's time goes: every gdflows curvature path beside plain jitted JAX on the same function.

One network problem (the MLP 784-128-128-10 tanh or the VGG of ``gdflows.models``, width 16; MSE; float32;
``--n`` images of the bundled MNIST subset, the same shapes as Fashion-MNIST), one theta, one vector. Each
candidate applies ``--hvps`` Hessian-vector products inside one compiled call (a ``fori_loop``, as Lanczos
does), compilation excluded; the candidates run interleaved, ``--repeats`` rounds, and each prints the
median time per HVP, its min-max spread and its ratio to the fastest plain-JAX candidate of the same round:

* ``plain jvp(grad)``: ``jax.jvp(jax.grad(E_batch))`` on all images at once (the reference);
* ``plain linearized``: ``jax.linearize(jax.grad(E_batch))`` once, then its linear map per product;
* ``chunked c``: the network problem's chunked loss (chunks of c images, :func:`gdflows.curvature.hvp_of`),
  forward-over-reverse at every product, for each c of ``--chunks``;
* ``operator``: :func:`gdflows.curvature.operator.hessian_operator` on the problem's own chunked loss (its
  default chunks), linearised within the memory budget (its residual bytes are printed);
* ``lanczos``: :func:`gdflows.curvature.top_eigenpairs` for a fixed ``--hvps``-vector basis (tol 0), per HVP;
  and with its default basis (100 vectors) stopped at tol 1e-4, per HVP it took;
* the same Lanczos written in plain JAX, the reference for a Lanczos path (a Lanczos step is an HVP plus
  the reorthogonalisation every full-reorthogonalisation Lanczos pays): ``plain lanczos``, ``--hvps`` steps
  of ``jax.linearize(jax.grad(E_batch))``'s map with two classical Gram-Schmidt passes over the basis,
  then ``eigvalsh`` of T; and ``matfree lanczos``, matfree's ``tridiag_sym`` (full reorthogonalisation) on
  the same map. A Lanczos path's ratio to the faster of these is printed beside its ratio to the plain HVP;
* ``plain lanczos, budget 100, tol 1e-4``: the plain-JAX answer to the default run's question (top eigenpair
  to a relative residual of 1e-4 within 100 HVPs): a ``while_loop`` over a (101, D) basis, two Gram-Schmidt
  passes, the top Ritz pair's residual |beta_n s_n| checked after every step; the default run's ratio to it
  is printed too. A solve that may need its whole budget reserves room for it: XLA allocates a program's
  temporaries at every call, and above glibc's mmap threshold (32 MB) they are fresh pages that the kernel
  zeroes on first touch, so a budgeted solve pays for the pages it touches even when it stops early.

``--marginal`` times each product candidate at ``--hvps`` and twice as many products instead and prints the
cost of one more product and the one-off work (the linearisation): the fair per-product figure for a
solve of many products. ``--conv native`` builds the nets with XLA's own convolution instead of the CPU
path's shifted matmuls (:func:`gdflows.models.layers.patch_conv`), to measure that choice.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/hvp_paths.py --model vgg``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import numpy as np

from gdflows.curvature import hvp_of, top_eigenpairs
from gdflows.curvature.operator import hessian_operator, residual_bytes
from gdflows.data import load_dataset
from gdflows.models import layers
from gdflows.problems.network import network_problem

NETS = {"mlp": {"depth": 2, "width": 128, "activation": "tanh"}, "vgg": {"width": 16}}


def products(matvec_at, n: int):
    """jit(theta, v) -> n chained products (scaled so nothing overflows)."""
    return jax.jit(lambda t, v: jax.lax.fori_loop(0, n, lambda i, w: matvec_at(t)(w) * 1e-3, v))


def candidates(args) -> tuple[dict, tuple]:
    data = load_dataset("mnist_subset", n_train=args.n, dtype="float32")
    problem = network_problem(args.model, data, loss="mse", dtype="float32", **NETS[args.model])
    x, y = problem.train_xy
    grad = jax.grad(lambda s: problem.batch_loss(s, x, y))
    out = {
        "plain jvp(grad)": products(lambda t: lambda w: jax.jvp(grad, (t,), (w,))[1], args.hvps),
        "plain linearized": products(lambda t: jax.linearize(grad, t)[1], args.hvps),
    }
    for c in args.chunks:
        chunked = network_problem(args.model, data, loss="mse", dtype="float32", chunk_size=c, **NETS[args.model])
        out[f"chunked {c}"] = products(lambda t, loss=chunked.loss: lambda w: hvp_of(loss)(t, w), args.hvps)
    out[f"operator (chunks of {problem.loss.chunk_size})"] = products(
        lambda t: hessian_operator(problem.loss, t).matvec, args.hvps
    )

    def lanczos(t, v):
        pairs = top_eigenpairs(problem.loss, t, 1, tol=0.0, max_size=args.hvps, method="lanczos", block=v[None])
        return pairs.values

    def lanczos_default(t, v):  # the default basis (100 vectors) allocated, stopped by tol: count its HVPs
        return top_eigenpairs(problem.loss, t, 1, tol=1e-4, method="lanczos", block=v[None]).hvps

    out["lanczos (operator)"] = jax.jit(lanczos)
    out["plain lanczos"] = jax.jit(functools.partial(plain_lanczos, grad, args.hvps))
    out["matfree lanczos"] = jax.jit(functools.partial(matfree_lanczos, grad, args.hvps))
    out["lanczos, default basis, tol 1e-4"] = jax.jit(lanczos_default)
    out["plain lanczos, budget 100, tol 1e-4"] = jax.jit(functools.partial(plain_lanczos_tol, grad, 100, 1e-4))
    theta = problem.theta0
    v = jax.random.normal(jax.random.PRNGKey(1), theta.shape, theta.dtype)
    need = residual_bytes(problem.loss, theta)
    print(f"{args.model}: D = {theta.size}, {args.n} images, residuals of the linearisation {need / 2**20:.0f} MiB")
    return out, (theta, v)


def plain_lanczos(grad, n: int, t, v):
    """The largest Ritz value after n Lanczos steps in plain JAX: a (n + 1, D) basis, CGS2 over all of it."""
    matvec = jax.linearize(grad, t)[1]
    basis = jax.numpy.zeros((n + 1, v.size), v.dtype).at[0].set(v / jax.numpy.linalg.norm(v))

    def step(i, carry):
        basis, alpha, beta = carry
        w = matvec(basis[i])
        c1 = basis @ w
        w = w - c1 @ basis
        c2 = basis @ w
        w = w - c2 @ basis
        norm = jax.numpy.linalg.norm(w)
        return basis.at[i + 1].set(w / norm), alpha.at[i].set(c1[i] + c2[i]), beta.at[i].set(norm)

    zeros = jax.numpy.zeros(n, v.dtype)
    _, alpha, beta = jax.lax.fori_loop(0, n, step, (basis, zeros, zeros))
    T = jax.numpy.diag(alpha) + jax.numpy.diag(beta[:-1], 1) + jax.numpy.diag(beta[:-1], -1)
    return jax.numpy.linalg.eigvalsh(T)[-1]


def plain_lanczos_tol(grad, budget: int, tol: float, t, v):
    """The number of plain-JAX Lanczos steps (CGS2 over a (budget + 1, D) basis) until the top Ritz pair's
    residual |beta_n s_n| is at most tol times its value, or the budget: gdflows' default run in plain JAX."""
    jnp = jax.numpy
    matvec = jax.linearize(grad, t)[1]
    basis = jnp.zeros((budget + 1, v.size), v.dtype).at[0].set(v / jnp.linalg.norm(v))
    proj = jnp.zeros((budget, budget), v.dtype)

    def top_residual(proj, n):
        used = jnp.arange(budget) < n
        t_n = jnp.where(used[:, None] & used[None, :], proj, 0)
        floor = -1 - 2 * jnp.max(jnp.sum(jnp.abs(t_n), axis=1))  # unused rows: eigenvalues below the spectrum
        values, vectors = jnp.linalg.eigh(t_n + jnp.diag(jnp.where(used, 0, floor)))
        beta = proj[jnp.minimum(n, budget - 1), n - 1] * (n < budget)
        return jnp.abs(beta * vectors[n - 1, -1]) <= tol * jnp.abs(values[-1])

    def step(carry):
        basis, proj, n, _ = carry
        w = matvec(basis[n])
        c1 = basis @ w
        w = w - c1 @ basis
        c2 = basis @ w
        w = w - c2 @ basis
        norm = jnp.linalg.norm(w)
        c = (c1 + c2)[:budget]
        proj = proj.at[:, n].set(c).at[n, :].set(c)
        proj = jnp.where(n + 1 < budget, proj.at[n + 1, n].set(norm).at[n, n + 1].set(norm), proj)
        return basis.at[n + 1].set(w / norm), proj, n + 1, top_residual(proj, n + 1)

    carry = (basis, proj, jnp.asarray(0), jnp.asarray(False))
    return jax.lax.while_loop(lambda c: ~c[3] & (c[2] < budget), step, carry)[2]


def matfree_lanczos(grad, n: int, t, v):
    """The largest Ritz value after n steps of matfree's tridiag_sym (full reorthogonalisation)."""
    from matfree.decomp import tridiag_sym

    result = tridiag_sym(n, reortho="full", materialize=True)(jax.linearize(grad, t)[1], v)
    return jax.numpy.linalg.eigvalsh(result.J_small)[-1]


def _native_conv(stride: int):
    dims = ("NHWC", "HWIO", "NHWC")
    return functools.partial(
        jax.lax.conv_general_dilated, window_strides=(stride,) * 2, padding="SAME", dimension_numbers=dims
    )


def marginal(args) -> None:
    """Each product candidate at n and 2n products, interleaved: (T(2n) - T(n)) / n per product, and the
    one-off work (the linearisation, if any) 2 T(n) - T(2n)."""
    runs = {}
    for n in (args.hvps, 2 * args.hvps):
        cands, inputs = candidates(argparse.Namespace(**vars(args) | {"hvps": n}))
        for name, f in cands.items():
            if "lanczos" not in name:
                runs.setdefault(name, {})[n] = f
    for pair in runs.values():
        for f in pair.values():
            jax.block_until_ready(f(*inputs))
            jax.block_until_ready(f(*inputs))
    times = {(name, n): [] for name, pair in runs.items() for n in pair}
    for _ in range(args.repeats):
        for name, n in times:
            tic = time.perf_counter()
            jax.block_until_ready(runs[name][n](*inputs))
            times[name, n].append(time.perf_counter() - tic)
    n = args.hvps
    for name in runs:
        one, two = np.median(times[name, n]), np.median(times[name, 2 * n])
        print(f"{name:34s} {1e3 * (two - one) / n:9.1f} ms per extra product, one-off {1e3 * (2 * one - two):8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(NETS), default="mlp")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--hvps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunks", type=int, nargs="*", default=(32, 256, 1000))
    parser.add_argument("--marginal", action="store_true", help="cost per extra product, one-off work apart")
    parser.add_argument("--conv", choices=("default", "native"), default="default")
    args = parser.parse_args()
    if args.conv == "native":  # measure the alternative: XLA's own convolution on every platform
        layers._conv_op = _native_conv
    if args.marginal:
        return marginal(args)
    cands, inputs = candidates(args)
    # compile off the clock; a Lanczos run stopped by its tolerance is timed per HVP it took
    counts = {k: int(f(*inputs)) if "tol 1e-4" in k else args.hvps for k, f in cands.items()}
    times = {k: [] for k in cands}
    for f in cands.values():  # one untimed round: first calls fault in their buffers' pages
        jax.block_until_ready(f(*inputs))
    for _ in range(args.repeats):
        for name, f in cands.items():
            tic = time.perf_counter()
            jax.block_until_ready(f(*inputs))
            times[name].append(1e3 * (time.perf_counter() - tic) / counts[name])
    rounds = {name: np.array(t) for name, t in times.items()}
    best_plain = np.minimum(rounds["plain jvp(grad)"], rounds["plain linearized"])
    best_lanczos = np.minimum(rounds["plain lanczos"], rounds["matfree lanczos"])
    for name, row in rounds.items():
        ratio = np.median(row / best_plain)
        versus = f"  {np.median(row / best_lanczos):5.2f}x best plain Lanczos" if name.startswith("lanczos") else ""
        if name.startswith("lanczos, default"):
            versus += f", {np.median(row / rounds['plain lanczos, budget 100, tol 1e-4']):5.2f}x its plain twin"
        print(
            f"{name:34s} {np.median(row):9.2f} ms/HVP  [{row.min():.2f}, {row.max():.2f}]  {ratio:5.2f}x best plain"
            f"  ({counts[name]} HVPs){versus}"
        )


if __name__ == "__main__":
    main()
