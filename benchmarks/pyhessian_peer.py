"""Top Hessian eigenvalues at network size: gdflows (Lanczos) vs PyHessian (power iteration), at equal true accuracy.

The nets people race PyHessian on, both sides holding the same weights and data (``--n-train`` images of the
bundled MNIST subset, MSE): ``--model mlp``, the 784-128-128-10 tanh MLP (D = 118,282), and ``--model vgg``, the
VGG of ``gdflows.models`` at width 16 (D = 109,370). gdflows runs its user path, ``hessian_eigenpairs`` on the
network problem's chunked loss (the linearisation kept within the memory budget: its bytes are printed);
PyHessian runs ``hessian(...).eigenvalues`` on the same net rebuilt in PyTorch.

The truth is gdflows' float64 Lanczos at ``--truth-tol`` (every Ritz residual below it relative to |lambda_0|). For
each dtype (both sides compute in it) and each k (top-1, top-10), each side runs a sweep of its own stopping
tolerance (PyHessian: relative change of the eigenvalue between power iterations; gdflows: relative Ritz
residual); a run's *true error* is max_i |lambda_i - lambda_i^true| / |lambda_i^true| over its k eigenvalues.

Fair timing: both processes are pinned to the same ``--threads`` cores (``sched_setaffinity``; PyTorch also
``set_num_threads``); every run is warmed up once off the clock (compilation on one side, the first graph on
the other); then ``--repeats`` rounds each run every (side, dtype, k, tolerance) once, the two sides
alternating run by run, and the side that goes first alternating between rounds. At each target error each
side's tolerance is its fastest one whose true error reaches the target, and the ratio PyHessian / gdflows is
taken round by round: printed are its median and min-max over the rounds, beside each side's HVP count and
median cost per HVP. Nothing is asserted.

PyTorch and pyhessian are not gdflows dependencies; install them in their own environment:

    python3.11 -m venv /tmp/peers
    /tmp/peers/bin/pip install -r benchmarks/requirements-peers.txt
    .venv/bin/python benchmarks/pyhessian_peer.py --model mlp --peer-python /tmp/peers/bin/python

The PyHessian side is this same file with ``--side pyhessian`` in ``--peer-python``: it reads the weights and
data from a temporary .npz, then one run per line of JSON on stdin, and answers one line of JSON per run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

GDFLOWS_TOLS = {"float32": (1e-2, 1e-3, 1e-4, 1e-5), "float64": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8)}
PYHESSIAN_TOLS = (1e-2, 1e-3, 1e-4, 1e-5)
TARGETS = (1e-2, 1e-3, 1e-4)
NETS = {"mlp": {"depth": 2, "width": 128, "activation": "tanh"}, "vgg": {"width": 16}}


def pin(threads: int) -> None:
    """Run this process on cores 0..threads-1 (before the numeric library starts its thread pool)."""
    os.sched_setaffinity(0, range(threads))


# ---------------------------------------------------------------- gdflows side


class Gdflows:
    """The gdflows side: the problem in each dtype, the truth, one timed call per run."""

    def __init__(self, args, npz: Path):
        import jax

        jax.config.update("jax_enable_x64", True)  # the truth is float64; float32 runs use a float32 problem
        from gdflows.curvature import hessian_eigenpairs
        from gdflows.curvature.operator import memory_budget, residual_bytes
        from gdflows.data import load_dataset
        from gdflows.problems.network import network_problem

        self.eigenpairs = hessian_eigenpairs
        self.problems = {}
        for dtype in ("float64", *args.dtypes):
            data = load_dataset("mnist_subset", n_train=args.n_train, dtype=dtype)
            self.problems[dtype] = network_problem(args.model, data, loss="mse", dtype=dtype, **NETS[args.model])
        p64 = self.problems["float64"]
        for dtype in args.dtypes:
            p = self.problems[dtype]
            need, budget = residual_bytes(p.loss, p.theta0), memory_budget()
            print(
                f"gdflows {dtype}: chunks of {p.loss.chunk_size}; residuals of the linearisation "
                f"{need / 2**20:.0f} MiB, budget {budget / 2**20:.0f} MiB: "
                + ("linearised once per solve" if need <= budget else "recomputed at every product")
            )
        x = p64.data.x_train
        params = jax.tree_util.tree_leaves(p64.unravel(p64.theta0))
        np.savez(npz, x=x, y=p64.data.y_train, **{f"p{i:03d}": np.asarray(a) for i, a in enumerate(params)})
        start = time.perf_counter()
        self.truth = self._solve("float64", max(args.ks), args.truth_tol, 400)
        print(
            f"{args.model}: D = {p64.theta0.size:,}, {len(x)} images; truth (float64, tol {args.truth_tol:g}, "
            f"{int(self.truth.hvps)} HVPs, {time.perf_counter() - start:.0f} s): {np.asarray(self.truth.values)}",
            flush=True,
        )
        self.truth = np.asarray(self.truth.values)

    def _solve(self, dtype, k, tol, max_size=None):
        theta = self.problems["float64"].theta0.astype(dtype)  # one theta: float32 draws differ from float64 ones
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a loose tolerance may stop short of tol: its true error says so
            pairs = self.eigenpairs(self.problems[dtype].loss, theta, k, tol=tol, max_size=max_size)
        return jax_ready(pairs)

    def run(self, run: dict) -> dict:
        start = time.perf_counter()
        pairs = self._solve(run["dtype"], run["k"], run["tol"])
        seconds = time.perf_counter() - start
        return run | dict(time=seconds, hvps=int(pairs.hvps), values=[float(v) for v in pairs.values])


def jax_ready(tree):
    import jax

    return jax.block_until_ready(tree)


# ---------------------------------------------------------------- PyHessian side


def torch_net(model: str, arrays, dtype):
    """The gdflows net of ``model`` in PyTorch, with its weights (NHWC images in, logits out)."""
    import torch

    params = [torch.from_numpy(arrays[k]).to(dtype) for k in sorted(k for k in arrays.files if k.startswith("p"))]
    pairs = list(zip(params[0::2], params[1::2]))  # leaves come as (b, w) per layer: dict keys sort b < w

    def linear(b, w):
        layer = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            layer.weight.copy_(w.T)
            layer.bias.copy_(b)
        return layer

    def conv(b, w):
        layer = torch.nn.Conv2d(w.shape[2], w.shape[3], w.shape[0], padding=w.shape[0] // 2)
        with torch.no_grad():
            layer.weight.copy_(w.permute(3, 2, 0, 1))  # HWIO -> OIHW
            layer.bias.copy_(b)
        return layer

    class ToNCHW(torch.nn.Module):
        def forward(self, x):
            return x.permute(0, 3, 1, 2)

    class FlattenNHWC(torch.nn.Module):  # gdflows flattens NHWC: channels last
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    if model == "mlp":
        layers = [torch.nn.Flatten()]
        for b, w in pairs[:-1]:
            layers += [linear(b, w), torch.nn.Tanh()]
        return torch.nn.Sequential(*layers, linear(*pairs[-1]))
    layers = [ToNCHW()]
    convs = pairs[:-2]
    for i, (b, w) in enumerate(convs):
        layers += [conv(b, w), torch.nn.Tanh()] + ([torch.nn.AvgPool2d(2)] if i % 2 else [])
    (b1, w1), (b2, w2) = pairs[-2:]
    return torch.nn.Sequential(*layers, FlattenNHWC(), linear(b1, w1), torch.nn.Tanh(), linear(b2, w2))


def criterion(out, target):
    """gdflows' mse: (1/N) sum_n (1/2) |f_n - e_{y_n}|^2."""
    return 0.5 * ((out - target) ** 2).sum(dim=1).mean()


def peer_runs(npz: Path, model: str):
    """(run, net, data) for each run read from stdin as JSON, the net and data built once per dtype, that dtype
    made PyTorch's default (the PyTorch side of every peer benchmark)."""
    import torch

    arrays, nets = np.load(npz), {}
    for line in sys.stdin:
        run = json.loads(line)
        dtype = {"float32": torch.float32, "float64": torch.float64}[run["dtype"]]
        torch.set_default_dtype(dtype)
        if run["dtype"] not in nets:
            x = torch.from_numpy(arrays["x"]).to(dtype)
            onehot = torch.nn.functional.one_hot(torch.from_numpy(arrays["y"]).long(), 10).to(dtype)
            nets[run["dtype"]] = (torch_net(model, arrays, dtype), (x, onehot))
        yield run, *nets[run["dtype"]]


def pyhessian_side(npz: Path, model: str) -> None:
    """Answer each run read from stdin (JSON: dtype, k, tol, max_iter) with one JSON line on stdout."""
    import importlib

    import torch
    from pyhessian import hessian

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    pyhessian_module = importlib.import_module("pyhessian.hessian")  # the module, not the class
    hvps = [0]
    product = pyhessian_module.hessian_vector_product

    def counted_product(*a):
        hvps[0] += 1
        return product(*a)

    pyhessian_module.hessian_vector_product = counted_product  # count its HVPs; the maths is untouched
    for run, net, data in peer_runs(npz, model):
        torch.manual_seed(0)
        hvps[0] = 0
        start = time.perf_counter()
        comp = hessian(net, criterion, data=data, cuda=False)
        values, _ = comp.eigenvalues(maxIter=run["max_iter"], tol=run["tol"], top_n=run["k"])
        row = run | dict(time=time.perf_counter() - start, hvps=hvps[0], values=values)
        print(json.dumps(row), flush=True)


# ---------------------------------------------------------------- the race


def true_error(values, truth) -> float:
    """max_i |lambda_i - lambda_i^true| / |lambda_i^true| over the run's k eigenvalues (largest first)."""
    values = np.sort(np.asarray(values, dtype=float))[::-1]
    return float(np.max(np.abs(values - truth[: len(values)]) / np.abs(truth[: len(values)])))


def plan(args) -> list[dict]:
    """Every run of one round, the two sides alternating."""
    our_tols = {d: args.our_tols or GDFLOWS_TOLS[d] for d in args.dtypes}
    ours = [dict(side="gdflows", dtype=d, k=k, tol=t) for d in args.dtypes for k in args.ks for t in our_tols[d]]
    peer = [
        dict(side="pyhessian", dtype=d, k=k, tol=t, max_iter=args.max_iter)
        for d in args.dtypes
        for k in args.ks
        for t in args.peer_tols
    ]
    runs = []
    for i in range(max(len(ours), len(peer))):
        runs += [r[i] for r in (ours, peer) if i < len(r)]
    return runs


def race(args, ours: Gdflows, peer) -> list[dict]:
    """Warm-up, then ``args.repeats`` interleaved rounds; returns one row per timed run (with its round)."""

    def call(run):
        if run["side"] == "gdflows":
            return ours.run(run)
        peer.stdin.write(json.dumps(run) + "\n")
        peer.stdin.flush()
        line = peer.stdout.readline()
        if not line:
            sys.exit(f"the PyHessian side failed:\n{peer.stderr.read()}")
        return json.loads(line)

    runs = plan(args)
    for dtype in args.dtypes:  # warm-up, off the clock: gdflows compiles once per (dtype, k); PyTorch's first graph
        for k in args.ks:
            call(dict(side="gdflows", dtype=dtype, k=k, tol=1e-1))
        call(dict(side="pyhessian", dtype=dtype, k=1, tol=1e-1, max_iter=3))
    rows = []
    for r in range(args.repeats):
        for run in runs if r % 2 == 0 else runs[::-1]:
            row = call(run) | dict(round=r)
            row["error"] = true_error(row["values"], ours.truth)
            rows.append(row)
            print(
                f"  round {r} {row['side']:9s} {row['dtype']} k={row['k']:<2d} tol {row['tol']:.0e}: "
                f"{row['time']:8.3f} s {row['hvps']:6d} HVPs  error {row['error']:.1e}",
                flush=True,
            )
    return rows


def chosen_tol(rows, side, dtype, k, target):
    """The side's tolerance whose runs all reach ``target`` with the least median time (None if none does)."""
    mine = [r for r in rows if (r["side"], r["dtype"], r["k"]) == (side, dtype, k)]
    tols = {r["tol"] for r in mine if all(s["error"] <= target for s in mine if s["tol"] == r["tol"])}
    if not tols:
        return None
    return min(tols, key=lambda t: np.median([r["time"] for r in mine if r["tol"] == t]))


def summary(rows, args) -> list[str]:
    """One line per (dtype, k, target): each side's tolerance, HVPs, time, ms/HVP, and the ratio's median and spread."""
    lines = []
    for dtype in args.dtypes:
        for k in args.ks:
            for target in args.targets:
                where = f"{args.model} {dtype} top-{k:<2d} error <= {target:.0e}: "
                tols = {s: chosen_tol(rows, s, dtype, k, target) for s in ("gdflows", "pyhessian")}
                if None in tols.values():
                    missing = " and ".join(s for s, t in tols.items() if t is None)
                    lines.append(where + f"not reached by {missing}")
                    continue
                picked = {
                    s: sorted(
                        (r for r in rows if (r["side"], r["dtype"], r["k"], r["tol"]) == (s, dtype, k, t)),
                        key=lambda r: r["round"],
                    )
                    for s, t in tols.items()
                }
                ratios = [p["time"] / o["time"] for o, p in zip(picked["gdflows"], picked["pyhessian"])]
                sides = []
                for s, name in (("gdflows", "gdflows"), ("pyhessian", "PyHessian")):
                    times = [r["time"] for r in picked[s]]
                    hvps = picked[s][0]["hvps"]
                    sides.append(
                        f"{name} {np.median(times):.3f} s ({hvps} HVPs, {1e3 * np.median(times) / hvps:.2f} ms/HVP)"
                    )
                lines.append(
                    where + ", ".join(sides) + f": PyHessian / gdflows {np.median(ratios):.2f}x "
                    f"[{min(ratios):.2f}, {max(ratios):.2f}] over {len(ratios)} rounds"
                )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["both", "pyhessian"], default="both")
    parser.add_argument("--model", choices=tuple(NETS), default="mlp")
    parser.add_argument("--peer-python", default="/tmp/peers/bin/python")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--targets", type=float, nargs="+", default=list(TARGETS))
    parser.add_argument("--our-tols", type=float, nargs="+", help="gdflows' tolerances (default: per dtype)")
    parser.add_argument("--peer-tols", type=float, nargs="+", default=list(PYHESSIAN_TOLS), help="PyHessian's")
    parser.add_argument("--truth-tol", type=float, default=1e-10)
    parser.add_argument("--max-iter", type=int, default=1000, help="PyHessian's power iterations per eigenvalue")
    parser.add_argument("--csv", type=Path, help="write every timed run here")
    parser.add_argument("--npz", type=Path)
    args = parser.parse_args()
    pin(args.threads)
    if args.side == "pyhessian":
        pyhessian_side(args.npz, args.model)
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "net.npz"
        ours = Gdflows(args, npz)
        command = [args.peer_python, __file__, "--side", "pyhessian", "--npz", str(npz), "--model", args.model]
        command += ["--threads", str(args.threads)]
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as peer:
            rows = race(args, ours, peer)
            peer.stdin.close()
    print(f"\ntime to equal true accuracy, {args.threads} threads on both sides, {args.repeats} interleaved rounds")
    print("\n".join(summary(rows, args)))
    if args.csv:
        keys = ("round", "side", "dtype", "k", "tol", "time", "hvps", "error")
        args.csv.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))


if __name__ == "__main__":
    main()
