"""Hessian trace and spectral density at network size: gdflows (XTrace, SLQ) vs PyHessian (Hutchinson, SLQ).

The same nets, weights and data as ``benchmarks/pyhessian_peer.py`` (``--model mlp``: the 784-128-128-10 tanh
MLP, D = 118,282, on ``--n-train`` bundled MNIST images, MSE), both sides in ``--dtype``.

* **Trace, time at equal accuracy.** Truth: gdflows' XTrace in float64 with ``--truth-probes`` probes (its
  standard error printed; the targets sit far above it). gdflows runs ``hessian_trace`` (XTrace) with
  ``--our-probes`` probes (2 HVPs each); PyHessian runs ``hessian.trace`` (Hutchinson, Rademacher) with
  ``tol=0``, so it draws exactly ``--peer-samples`` samples (one HVP each). Each (side, budget) runs in
  ``--repeats`` interleaved rounds with a fresh seed per round; at each target relative error, each side's
  cheapest budget whose every round reaches it is timed, and the ratio PyHessian / gdflows is taken round by
  round (median and min-max printed).
* **Density, time at equal settings.** Both sides run SLQ with ``--order`` Lanczos steps and ``--density-probes``
  probes (gdflows: ``spectral_density``, full reorthogonalisation by matfree; PyHessian: ``hessian.density``,
  full reorthogonalisation). Printed: each side's median time and HVPs, and each density's first moment
  (tr H / D) against the truth. PyHessian 0.1 calls ``torch.eig``, which PyTorch removed in 1.9; the
  PyHessian side installs an equivalent (``torch.linalg.eigh`` of its symmetric tridiagonal T, the same
  eigenvalues and first-component weights) and says so.

Both processes are pinned to the same ``--threads`` cores; every call is warmed up off the clock. Nothing is
asserted. Install the peers as ``pyhessian_peer.py`` says (``benchmarks/requirements-peers.txt``), then:

    .venv/bin/python benchmarks/pyhessian_spectrum.py --peer-python /tmp/peers/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyhessian_peer import NETS, criterion, peer_runs, pin  # noqa: E402

TARGETS = (0.1, 0.03, 0.01)


class Gdflows:
    """The gdflows side: the problem, the truth, one timed call per run."""

    def __init__(self, args, npz: Path):
        import jax

        jax.config.update("jax_enable_x64", True)
        from gdflows.curvature import hessian_trace, spectral_density
        from gdflows.data import load_dataset
        from gdflows.problems.network import network_problem

        self.trace_fn, self.density_fn, self.jax = hessian_trace, spectral_density, jax
        self.problems = {}
        for dtype in {"float64", args.dtype}:
            data = load_dataset("mnist_subset", n_train=args.n_train, dtype=dtype)
            self.problems[dtype] = network_problem(args.model, data, loss="mse", dtype=dtype, **NETS[args.model])
        p64 = self.problems["float64"]
        self.dim = p64.theta0.size
        params = jax.tree_util.tree_leaves(p64.unravel(p64.theta0))
        np.savez(
            npz, x=p64.data.x_train, y=p64.data.y_train, **{f"p{i:03d}": np.asarray(a) for i, a in enumerate(params)}
        )
        start = time.perf_counter()
        truth = hessian_trace(p64.loss, p64.theta0, probes=args.truth_probes, key=jax.random.key(10**6))
        self.truth, self.truth_sem = truth.value, truth.sem
        print(
            f"{args.model}: D = {self.dim:,}, {args.n_train} images; truth tr H = {truth.value:.6g} +- "
            f"{truth.sem:.2g} (float64 XTrace, {truth.probes} HVPs, {time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    def run(self, run: dict) -> dict:
        p = self.problems[run["dtype"]]
        theta = self.problems["float64"].theta0.astype(run["dtype"])
        key = self.jax.random.key(run["seed"])
        start = time.perf_counter()
        if run["what"] == "trace":
            value = self.trace_fn(p.loss, theta, probes=run["budget"], key=key).value
            return run | dict(time=time.perf_counter() - start, hvps=2 * run["budget"], value=float(value))
        sd = self.density_fn(p.loss, theta, probes=run["probes"], order=run["order"], key=key)
        seconds = time.perf_counter() - start
        return run | dict(time=seconds, hvps=run["probes"] * run["order"], value=float(sd.trace()[0] / self.dim))


def torch_eig_shim(torch) -> None:
    """``torch.eig(T, eigenvectors=True)`` as PyHessian 0.1 uses it, for a symmetric T, on PyTorch >= 1.9."""

    def eig(T, eigenvectors=True):
        values, vectors = torch.linalg.eigh(T)
        return torch.stack([values, torch.zeros_like(values)], dim=1), vectors

    torch.eig = eig


def pyhessian_side(npz: Path, model: str) -> None:
    """Answer each run read from stdin with one JSON line on stdout."""
    import torch
    from pyhessian import hessian

    torch_eig_shim(torch)  # PyTorch >= 1.9 keeps a torch.eig that only raises
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    for run, net, data in peer_runs(npz, model):
        torch.manual_seed(run["seed"])
        start = time.perf_counter()
        comp = hessian(net, criterion, data=data, cuda=False)
        if run["what"] == "trace":
            value, hvps = float(np.mean(comp.trace(maxIter=run["budget"], tol=0.0))), run["budget"]
        else:
            nodes, weights = comp.density(iter=run["order"], n_v=run["probes"])
            value = float(np.mean([np.dot(w, n) for n, w in zip(nodes, weights)]))
            hvps = run["probes"] * run["order"]
        print(json.dumps(run | dict(time=time.perf_counter() - start, hvps=hvps, value=value)), flush=True)


def plan(args, seed: int) -> list[dict]:
    """One round: every trace budget and the density, the two sides alternating."""
    base = dict(dtype=args.dtype, seed=seed)
    ours = [dict(base, side="gdflows", what="trace", budget=b) for b in args.our_probes]
    peer = [dict(base, side="pyhessian", what="trace", budget=b) for b in args.peer_samples]
    density = dict(base, what="density", order=args.order, probes=args.density_probes)
    ours.append(dict(density, side="gdflows"))
    peer.append(dict(density, side="pyhessian"))
    runs = []
    for i in range(max(len(ours), len(peer))):
        runs += [r[i] for r in (ours, peer) if i < len(r)]
    return runs


def race(args, ours: Gdflows, call) -> list[dict]:
    for run in plan(args, seed=-1):  # warm-up off the clock: every (side, budget) compiles or builds once
        call(run)
    rows = []
    for r in range(args.repeats):
        runs = plan(args, seed=r)
        for run in runs if r % 2 == 0 else runs[::-1]:
            row = call(run) | dict(round=r)
            truth = ours.truth if run["what"] == "trace" else ours.truth / ours.dim
            row["error"] = abs(row["value"] - truth) / abs(truth)
            rows.append(row)
            print(
                f"  round {r} {row['side']:9s} {row['what']:7s} budget {row.get('budget', row.get('probes'))}: "
                f"{row['time']:8.3f} s {row['hvps']:5d} HVPs  error {row['error']:.1e}",
                flush=True,
            )
    return rows


def cheapest(rows, side, target):
    """The side's trace budget whose every round reaches ``target``, with the least median time (None: none)."""
    mine = [r for r in rows if r["side"] == side and r["what"] == "trace"]
    ok = {r["budget"] for r in mine if all(s["error"] <= target for s in mine if s["budget"] == r["budget"])}
    return min(ok, key=lambda b: np.median([r["time"] for r in mine if r["budget"] == b])) if ok else None


def summary(rows, args) -> list[str]:
    lines = []
    for target in args.targets:
        where = f"trace, {args.model} {args.dtype}, relative error <= {target:g} in every round: "
        budgets = {s: cheapest(rows, s, target) for s in ("gdflows", "pyhessian")}
        if None in budgets.values():
            said = []
            for s, b in budgets.items():
                largest = max(r["budget"] for r in rows if r["side"] == s and r["what"] == "trace")
                times = [r["time"] for r in rows if r["side"] == s and r.get("budget") == b]
                hvps = next((r["hvps"] for r in rows if r["side"] == s and r.get("budget") == b), None)
                said.append(
                    f"{s} not reached (budgets up to {largest})"
                    if b is None
                    else f"{s} {np.median(times):.3f} s ({hvps} HVPs)"
                )
            lines.append(where + ", ".join(said))
            continue
        picked = {
            s: sorted((r for r in rows if r["side"] == s and r.get("budget") == b), key=lambda r: r["round"])
            for s, b in budgets.items()
        }
        ratios = [p["time"] / o["time"] for o, p in zip(picked["gdflows"], picked["pyhessian"])]
        sides = [
            f"{name} {np.median([r['time'] for r in picked[s]]):.3f} s ({picked[s][0]['hvps']} HVPs)"
            for s, name in (("gdflows", "gdflows XTrace"), ("pyhessian", "PyHessian Hutchinson"))
        ]
        lines.append(
            where + ", ".join(sides) + f": PyHessian / gdflows {np.median(ratios):.2f}x "
            f"[{min(ratios):.2f}, {max(ratios):.2f}] over {len(ratios)} rounds"
        )
    dens = {
        s: sorted((r for r in rows if r["side"] == s and r["what"] == "density"), key=lambda r: r["round"])
        for s in ("gdflows", "pyhessian")
    }
    ratios = [p["time"] / o["time"] for o, p in zip(dens["gdflows"], dens["pyhessian"])]
    sides = [
        f"{name} {np.median([r['time'] for r in dens[s]]):.3f} s ({dens[s][0]['hvps']} HVPs, "
        f"first-moment error median {np.median([r['error'] for r in dens[s]]):.1e})"
        for s, name in (("gdflows", "gdflows"), ("pyhessian", "PyHessian"))
    ]
    lines.append(
        f"density (SLQ, order {args.order}, {args.density_probes} probe(s)), {args.model} {args.dtype}: "
        + ", ".join(sides)
        + f": PyHessian / gdflows {np.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}]"
    )
    return lines


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``--csv``, numbers as numbers (empty cells left out)."""
    import csv

    ints, floats = ("round", "budget", "probes", "order", "hvps"), ("time", "value", "error")
    out = []
    for r in csv.DictReader(path.open()):
        row = {k: v for k, v in r.items() if v != ""}
        out.append(row | {k: int(row[k]) for k in ints if k in row} | {k: float(row[k]) for k in floats if k in row})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["both", "pyhessian"], default="both")
    parser.add_argument("--model", choices=tuple(NETS), default="mlp")
    parser.add_argument("--peer-python", default="/tmp/peers/bin/python")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--targets", type=float, nargs="+", default=list(TARGETS))
    parser.add_argument("--truth-probes", type=int, default=300)
    parser.add_argument("--our-probes", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    parser.add_argument("--peer-samples", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320])
    parser.add_argument("--order", type=int, default=100, help="SLQ's Lanczos steps (PyHessian's default iter)")
    parser.add_argument("--density-probes", type=int, default=1, help="SLQ probes (PyHessian's default n_v)")
    parser.add_argument("--csv", type=Path, help="write every timed run here")
    parser.add_argument("--npz", type=Path)
    parser.add_argument("--from-csv", type=Path, help="print the summary of a --csv written before; run nothing")
    args = parser.parse_args()
    if args.from_csv:
        print("\n".join(summary(read_rows(args.from_csv), args)))
        return
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

            def call(run):
                if run["side"] == "gdflows":
                    return ours.run(run)
                peer.stdin.write(json.dumps(run) + "\n")
                peer.stdin.flush()
                line = peer.stdout.readline()
                if not line:
                    sys.exit(f"the PyHessian side failed:\n{peer.stderr.read()}")
                return json.loads(line)

            rows = race(args, ours, call)
            peer.stdin.close()
    print(f"\n{args.threads} threads on both sides, {args.repeats} interleaved rounds")
    print("\n".join(summary(rows, args)))
    if args.csv:
        keys = ("round", "side", "what", "budget", "probes", "order", "time", "hvps", "value", "error")
        args.csv.write_text(
            ",".join(keys) + "\n" + "".join(",".join(str(r.get(k, "")) for k in keys) + "\n" for r in rows)
        )


if __name__ == "__main__":
    main()
