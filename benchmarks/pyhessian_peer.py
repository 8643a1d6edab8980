"""Top Hessian eigenvalues at network size: gdflows (Lanczos) vs PyHessian (power iteration), at equal true accuracy.

The network people race PyHessian on: a 784-128-128-10 tanh MLP (D = 118,282)
with MSE on the first 1,000 training images of the bundled MNIST subset; both
sides hold the same weights and data. The truth is gdflows' float64 Lanczos at
tol 1e-10 (every Ritz residual below 1e-10 |lambda_0|, so the eigenvalues are
exact to about 1e-20 / gap). For each dtype (float32: both sides compute in
float32; float64) and each k (top-1, top-10), each side runs at a sweep of its
own stopping tolerance (PyHessian: relative change of the eigenvalue between
power iterations; gdflows: relative Ritz residual), and a run's *true error*
is max_i |lambda_i - lambda_i^true| / |lambda_i^true| over the k eigenvalues.
At each target error, the time of each side is its fastest run whose true
error is at most the target; printed: every run, then the ratio PyHessian /
gdflows per (dtype, k, target). Times: gdflows compiled ahead (the call alone);
PyHessian as called (its constructor builds the gradient graph once). Both
sides use the same CPU cores, one after the other. Nothing is asserted.

PyTorch and pyhessian are not gdflows dependencies; install them in their
own environment and give this script both:

    python3.11 -m venv /tmp/peers
    /tmp/peers/bin/pip install -r benchmarks/requirements-peers.txt
    .venv/bin/python benchmarks/pyhessian_peer.py --peer-python /tmp/peers/bin/python

The gdflows half runs here; the PyHessian half runs in ``--peer-python``
(this same file with ``--side pyhessian``), reading the weights and data
from a temporary .npz and the runs to make from JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GDFLOWS_TOLS = {"float32": (1e-2, 1e-3, 1e-4, 1e-5), "float64": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8)}
PYHESSIAN_TOLS = (1e-2, 1e-3, 1e-4, 1e-5)
TARGETS = (1e-2, 1e-3, 1e-4)


def gdflows_side(npz: Path, args) -> tuple[np.ndarray, list[dict]]:
    """(true top-max(k) eigenvalues, one row per gdflows run); writes the weights and data to ``npz``."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    jax.config.update("jax_enable_x64", True)  # the truth is float64; float32 runs cast their inputs
    from gdflows.curvature import hessian_eigenpairs, top_eigenpairs
    from gdflows.data import load_dataset
    from gdflows.models.losses import mse
    from gdflows.models.mlp import mlp

    data = load_dataset("mnist_subset", n_train=args.n_train, dtype="float64")
    model = mlp(data.input_shape, data.num_classes, depth=args.depth, width=args.width, activation="tanh")
    params = model.init(jax.random.PRNGKey(0))
    theta64, unravel64 = ravel_pytree(params)
    x, y = data.x_train.reshape(len(data.y_train), -1), data.y_train
    np.savez(npz, x=x, y=y, **{f"{k}{i}": np.asarray(p[k]) for i, p in enumerate(params) for k in ("w", "b")})
    kmax = max(args.ks)

    def loss_in(dtype):
        xd = jnp.asarray(x, dtype)
        _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a.astype(dtype), params))
        return lambda th: mse(model.apply(unravel(th), xd), jnp.asarray(y))

    truth = hessian_eigenpairs(loss_in("float64"), theta64, kmax, tol=1e-10, max_size=300)
    print(f"D = {theta64.size:,}; truth (float64, tol 1e-10, {int(truth.hvps)} HVPs): {np.asarray(truth.values)}")
    rows = []
    for dtype in args.dtypes:
        loss, theta = loss_in(dtype), theta64.astype(dtype)
        for k in args.ks:

            def top(th, tol, k=k, loss=loss):
                return top_eigenpairs(loss, th, k, tol=tol, max_size=args.max_size)

            compiled = jax.jit(top).lower(theta, jnp.asarray(1e-2, dtype)).compile()
            jax.block_until_ready(compiled(theta, jnp.asarray(1e-1, dtype)))  # warm-up, not timed
            for tol in GDFLOWS_TOLS[dtype]:
                start = time.perf_counter()
                pairs = jax.block_until_ready(compiled(theta, jnp.asarray(tol, dtype)))
                seconds = time.perf_counter() - start
                rows.append(
                    dict(side="gdflows", dtype=dtype, k=k, tol=tol, time=seconds, hvps=int(pairs.hvps))
                    | dict(values=[float(v) for v in pairs.values], converged=bool(pairs.converged))
                )
                print(_line(rows[-1], np.asarray(truth.values)), flush=True)
    return np.asarray(truth.values), rows


def pyhessian_side(npz: Path, runs: list[dict], width: int, depth: int) -> None:
    """Each run of ``runs`` (dtype, k, tol, max_iter) in turn; one JSON line per run on stdout."""
    import importlib

    import torch
    from pyhessian import hessian

    pyhessian_module = importlib.import_module("pyhessian.hessian")  # the module, not the class
    hvps = [0]
    product = pyhessian_module.hessian_vector_product

    def counted_product(*a):
        hvps[0] += 1
        return product(*a)

    pyhessian_module.hessian_vector_product = counted_product  # count its HVPs; the maths is untouched
    arrays = np.load(npz)
    sizes = [arrays["x"].shape[1]] + [width] * depth + [10]

    def criterion(out, target):  # gdflows' mse: (1/N) sum_n (1/2) |f_n - e_{y_n}|^2
        return 0.5 * ((out - target) ** 2).sum(dim=1).mean()

    for i, run in enumerate(runs):
        dtype = {"float32": torch.float32, "float64": torch.float64}[run["dtype"]]
        torch.set_default_dtype(dtype)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = torch.nn.Linear(a, b)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(arrays[f"w{i}"].T.copy()))
                layer.bias.copy_(torch.from_numpy(arrays[f"b{i}"]))
            layers += [layer, torch.nn.Tanh()]
        net = torch.nn.Sequential(*layers[:-1])
        x = torch.from_numpy(arrays["x"]).to(dtype)
        onehot = torch.nn.functional.one_hot(torch.from_numpy(arrays["y"]).long(), 10).to(dtype)
        if i == 0 or run["dtype"] != runs[i - 1]["dtype"]:  # warm-up per dtype, not timed
            hessian(net, criterion, data=(x, onehot), cuda=False).eigenvalues(maxIter=3, tol=1e-1, top_n=1)
        torch.manual_seed(0)
        hvps[0] = 0
        start = time.perf_counter()
        comp = hessian(net, criterion, data=(x, onehot), cuda=False)
        values, _ = comp.eigenvalues(maxIter=run["max_iter"], tol=run["tol"], top_n=run["k"])
        row = run | dict(side="pyhessian", time=time.perf_counter() - start, hvps=hvps[0], values=values)
        print(json.dumps(row), flush=True)


def true_error(values, truth) -> float:
    """max_i |lambda_i - lambda_i^true| / |lambda_i^true| over the run's k eigenvalues (largest first)."""
    values = np.sort(np.asarray(values, dtype=float))[::-1]
    return float(np.max(np.abs(values - truth[: len(values)]) / np.abs(truth[: len(values)])))


def fastest(rows, side, dtype, k, target):
    hits = [r for r in rows if (r["side"], r["dtype"], r["k"]) == (side, dtype, k) and r["error"] <= target]
    return min(hits, key=lambda r: r["time"]) if hits else None


def _line(r, truth) -> str:
    """One run as it finishes: side, dtype, k, tol, seconds, HVPs, true error."""
    return (
        f"  {r['side']:9s} {r['dtype']} k={r['k']:<2d} tol {r['tol']:.0e}: {r['time']:8.2f} s "
        f"{r['hvps']:6d} HVPs  error {true_error(r['values'], truth):.1e}"
    )


def report(rows, truth, args) -> None:
    for r in rows:
        r["error"] = true_error(r["values"], truth)
    print(f"\ntime to equal true accuracy, {args.depth} x {args.width} tanh MLP, {args.n_train} MNIST images, MSE")
    for dtype in args.dtypes:
        for k in args.ks:
            for target in args.targets:
                ours, peer = fastest(rows, "gdflows", dtype, k, target), fastest(rows, "pyhessian", dtype, k, target)
                where = f"  {dtype} top-{k:<2d} error <= {target:.0e}: "
                if ours is None or peer is None:
                    missing = " and ".join(s for s, r in (("gdflows", ours), ("PyHessian", peer)) if r is None)
                    print(where + f"not reached by {missing}")
                    continue
                print(
                    where + f"gdflows {ours['time']:.2f} s ({ours['hvps']} HVPs), PyHessian {peer['time']:.2f} s "
                    f"({peer['hvps']} HVPs): ratio PyHessian / gdflows = {peer['time'] / ours['time']:.1f}x"
                )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["both", "pyhessian"], default="both")
    parser.add_argument("--peer-python", default="/tmp/peers/bin/python")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--targets", type=float, nargs="+", default=list(TARGETS))
    parser.add_argument("--max-size", type=int, default=None, help="gdflows' Lanczos basis (default: the library's)")
    parser.add_argument("--max-iter", type=int, default=1000, help="PyHessian's power iterations per eigenvalue")
    parser.add_argument("--npz", type=Path)
    parser.add_argument("--runs", type=Path)
    args = parser.parse_args()
    if args.side == "pyhessian":
        pyhessian_side(args.npz, json.loads(args.runs.read_text()), args.width, args.depth)
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz, runs = Path(tmp) / "mlp.npz", Path(tmp) / "runs.json"
        truth, rows = gdflows_side(npz, args)
        todo = [
            dict(dtype=d, k=k, tol=t, max_iter=args.max_iter)
            for d in args.dtypes
            for k in args.ks
            for t in PYHESSIAN_TOLS
        ]
        runs.write_text(json.dumps(todo))
        flags = ["--width", str(args.width), "--depth", str(args.depth)]
        command = [args.peer_python, __file__, "--side", "pyhessian", "--npz", str(npz), "--runs", str(runs), *flags]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as peer:
            for line in peer.stdout:
                rows.append(json.loads(line))
                print(_line(rows[-1], truth), flush=True)
            stderr = peer.stderr.read()
        if peer.returncode:
            sys.exit(f"the PyHessian side failed in {args.peer_python}:\n{stderr}")
    report(rows, truth, args)


if __name__ == "__main__":
    main()
