"""The central flow on a 433-parameter swish MLP: time and accuracy, and the solver it replaced beside it.

Network: an 8-16-16-1 swish MLP (8*16+16 + 16*16+16 + 16+1 = 433 parameters) on 128 inputs
x ~ N(0, I_8) with targets y ~ N(0, 1), loss mean (f(x) - y)^2. With k_0..k_4 = split(PRNGKey(0), 5):
x from k_0, y from k_1, the three weight matrices N(0, 1/fan_in) from k_2..k_4, biases zero. GD at
h = 0.1 for 1,000 steps: its top eigenvalue reaches 2/h = 20 at step ~530, overshoots to ~24 and GD's
loss first rises at step ~680 (a catapult); from ~1,100 GD settles into a period-two orbit around
2/h. One eigenvalue of the central flow is at 2/h. Central flow: k = 5, 4 Euler substeps per GD step.

Prints, for the new solver: wall seconds (compile, run), field evaluations and HVPs per GD step; after
GD's EoS onset, the gap |avg GD loss - prediction| / prediction for centred windows of 21 and 101 steps
(largest, median, fraction within 5%); the flow's largest |h lambda_0 / 2 - 1|; the discretisation
error estimate (the largest relative change of the prediction with twice the substeps, overall and from
20 steps after the flow reaches 2/h: the arrival itself shifts by a step).

With ``--old-steps N`` (N > 0) it also runs the central flow as it was before this rewrite (the file
at commit 80974da, through gdflows.integrate at rtol 1e-8, atol 1e-10), the new solver over the same N
steps, and prints both times and the ratio, measured side by side, with the old solver's accuracy
numbers over those steps. For N = 1000 the old solver took 747 s wall (391 s CPU) on a busy 2-core
machine (load ~11), the new one 39 s (20 s CPU) beside it.

Usage: python benchmarks/central_flow.py [--steps 1000] [--old-steps 0] [--no-richardson]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import gdflows
from central_rmsprop_peer import swish_problem
from gdflows.central_solver import solve_central
from gdflows.experiments.central import centred_average, eos_onset, loss_tracking
from gdflows.flows.central import central

jax.config.update("jax_enable_x64", True)  # the benchmarks compare float64 accuracy

LR, K = 0.1, 5
OLD_COMMIT = "80974da"


def swish_regression():
    """(loss, theta0) of the 433-parameter network described in the module docstring (one definition, shared
    with ``central_rmsprop_peer.py``, whose peer process cannot import gdflows)."""
    return swish_problem()


def accuracy(gd_losses, prediction, lambda0) -> dict:
    onset = eos_onset(gd_losses)
    out = {"onset": onset, "hold": float(np.nanmax(np.abs(LR * lambda0[onset:] / 2 - 1)))}
    for w in (21, 101):
        out[w] = loss_tracking(centred_average(gd_losses, w), prediction, onset)
    return out


def show(name, acc, seconds, evals, steps):
    print(
        f"\n{name}: {seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU for {steps} GD steps, {evals} field evaluations "
        f"({evals / steps:.2f} per step)"
    )
    print(f"  EoS onset (GD) {acc['onset']}; flow lambda_0 within {acc['hold']:.1e} of 2/h after it")
    for w in (21, 101):
        t = acc[w]
        print(
            f"  window {w:>3}: largest gap {t['largest']:.4f}, median {t['median']:.4f}, "
            f"within 5% on {t['fraction']:.1%} of {t['steps']} steps"
        )


def clocks():
    """(wall, CPU) seconds: on a shared machine the process's CPU time is the steadier measure."""
    return np.array([time.perf_counter(), time.process_time()])


def new_solver(loss, theta0, steps, substeps=4):
    """(solution, compile (wall, CPU) seconds, run (wall, CPU) seconds): a 1-step solve compiles first."""
    flow = central(loss, LR, k=K, substeps=substeps)
    start = clocks()
    solve_central(flow, theta0, 1, chunk=100)
    compiled = clocks() - start
    start = clocks()
    sol = solve_central(flow, theta0, steps, chunk=100)
    return sol, compiled, clocks() - start


def old_module():
    """The central flow module at OLD_COMMIT, imported from a temporary file."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:src/gdflows/flows/central.py"], cwd=root, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_central.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_central", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_solver(loss, theta0, steps):
    """(thetas, predictions L + sum sigma_i^2 lambda_i / 2, lambda_0, seconds, field evaluations)."""
    flow = old_module().central(loss, LR, k=K)
    start = clocks()
    sol = gdflows.integrate(flow, theta0, LR, steps, rtol=1e-8, atol=1e-10)
    seconds = clocks() - start
    parts = eqx.filter_jit(lambda th: flow.parts(th))
    pred, lam0 = [], []
    for theta in np.real(sol.thetas):
        _, lam, _, sigma2 = parts(jnp.asarray(theta))
        pred.append(float(loss(theta) + 0.5 * jnp.dot(sigma2, lam)))
        lam0.append(float(lam[0]))
    return np.real(sol.thetas), np.array(pred), np.array(lam0), seconds, sol.num_field_evals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--old-steps", type=int, default=0, help="also run the pre-rewrite solver over this many steps")
    parser.add_argument("--no-richardson", action="store_true", help="skip the run with twice the substeps")
    args = parser.parse_args()
    loss, theta0 = swish_regression()
    print(f"D = {theta0.size}, h = {LR}, k = {K}, {args.steps} GD steps")
    gd_thetas = np.asarray(gdflows.gd(loss, theta0, LR, args.steps))
    gd_losses = np.asarray(jax.vmap(loss)(gd_thetas))
    sol, compiled, seconds = new_solver(loss, theta0, args.steps)
    print(f"status {sol.status}; compile {compiled[0]:.1f} s wall, {compiled[1]:.1f} s CPU; HVPs per GD step "
          f"{np.mean(sol.hvps):.1f}; SDCP iterations per GD step {np.mean(sol.sdcp_iterations):.1f}")  # fmt: skip
    show("central flow", accuracy(gd_losses, sol.prediction, sol.eigenvalues[:, 0]), seconds, sol.num_field_evals,
         args.steps)  # fmt: skip
    if not args.no_richardson:
        fine, _, fine_seconds = new_solver(loss, theta0, args.steps, substeps=8)
        change = np.abs(sol.prediction / fine.prediction - 1)
        drift = np.linalg.norm(sol.thetas - fine.thetas, axis=1)
        arrival = int(np.argmax(LR * sol.eigenvalues[:, 0] >= 2 * (1 - 1e-3)))
        later = slice(arrival + 20, None)
        print(
            f"\ntwice the substeps ({fine_seconds[0]:.1f} s): the prediction changes by at most {change.max():.2e} "
            f"(relative; step {int(np.argmax(change))}, the flow reaches 2/h at step {arrival}), by at most "
            f"{change[later].max():.2e} from 20 steps later on; the state by at most {drift.max():.2e}"
        )
    if args.old_steps > 0:
        n = args.old_steps
        _, _, new_seconds = new_solver(loss, theta0, n)
        thetas, pred, lam0, old_seconds, evals = old_solver(loss, theta0, n)
        show(f"old central flow ({OLD_COMMIT})", accuracy(gd_losses[: n + 1], pred, lam0), old_seconds, evals, n)
        gap = np.abs(pred / sol.prediction[: n + 1] - 1)
        onset = eos_onset(gd_losses[: n + 1])
        after = f", {gap[onset:].max():.2e} from GD's EoS onset on" if onset is not None else ""
        worst = int(np.argmax(gap))
        print(f"\nold / new prediction: largest relative difference {gap.max():.2e} (step {worst}){after}")
        wall, cpu = old_seconds / new_seconds
        print(
            f"time over {n} steps: old {old_seconds[0]:.1f} s wall ({old_seconds[1]:.1f} s CPU), new "
            f"{new_seconds[0]:.1f} s wall ({new_seconds[1]:.1f} s CPU); old / new: {wall:.1f} wall, {cpu:.1f} CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
