"""RMSProp's central flow: gdflows beside the authors' implementation (alex-damian/central_flows_jax).

Network: the 433-parameter swish MLP of ``benchmarks/central_flow.py`` (8-16-16-1, 128 Gaussian inputs and
targets, float64; built by :func:`swish_problem`, here, in both processes). Full-batch RMSProp at lr 0.001,
beta_2 0.99, eps 0, from nu_0 = g(theta_0)^2 (preconditioned sharpness 0.95 of 2/lr there): its loss first
rises at step ~465 (the edge). Both central flows run ``--steps`` (1,000) GD steps of flow time with 4 Euler
substeps each and k = 5 tracked directions, from the same theta_0, nu_0 and start basis:

* gdflows: :func:`gdflows.flows.central_rmsprop` solved by :func:`gdflows.solve_central`;
* the authors': ``Flow(loss, RMSProp(lr, beta2, eps=0)).central`` called once per GD step (their example
  notebook's loop), in its own process and virtual environment (``--peer-python``).

Printed: each side's time, compiling included (``--repeats`` runs per side, alternated, each in a fresh
process: the median ratio and its range), wall and CPU; the largest relative
difference of their losses L(w) and of their loss predictions over the 1,000 steps; and how each prediction
tracks RMSProp's own loss averaged over centred windows of 21 and 101 steps from the edge on (RMSProp run
by optax from the same state).

The authors' flow raises the EMA by the oscillation as :math:`\\sum_{ij} X_{ij}\\, u_i \\odot u_j` (the
second derivative of their state update in the gradient, along the basis vectors u), where the gradient's
oscillation is :math:`H\\,\\delta w` and so adds :math:`\\operatorname{diag}(H\\Sigma H)`,
:math:`\\sum_{ij} X_{ij} (Hu_i) \\odot (Hu_j)` (gdflows' term; docs/theory.md, section 9). With
``--peer-fix`` the authors' flow runs with that one term replaced by gdflows' (a patch applied in the peer
process), to see whether the two implementations then agree.

Setup (once):

    python3.11 -m venv /tmp/cfj
    /tmp/cfj/bin/pip install -r benchmarks/requirements-central-peer.txt
    /tmp/cfj/bin/pip install --no-deps <a checkout of alex-damian/central_flows_jax (071585b)>
    .venv/bin/python benchmarks/central_rmsprop_peer.py --peer-python /tmp/cfj/bin/python [--peer-fix]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LR, DECAY, SUBSTEPS, K = 0.001, 0.99, 4, 5


def swish_problem():
    """(loss, theta0) of the 433-parameter swish regression (pure JAX, the same in both processes): with
    k_0..k_4 = split(PRNGKey(0), 5), x ~ N(0, I_8) (128 rows) from k_0, y ~ N(0, 1) from k_1, weight matrices
    N(0, 1/fan_in) from k_2..k_4, biases zero; loss mean (f(x) - y)^2, swish(z) = z (1 + tanh(z/2)) / 2."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    x, y = jax.random.normal(keys[0], (128, 8)), jax.random.normal(keys[1], (128,))
    sizes = (8, 16, 16, 1)
    layers = [
        {"w": jax.random.normal(key, (a, b)) / jnp.sqrt(a), "b": jnp.zeros(b)}
        for key, a, b in zip(keys[2:], sizes[:-1], sizes[1:])
    ]
    theta0, unravel = ravel_pytree(layers)

    def loss(theta):
        hidden = x
        *inner, last = unravel(theta)
        for layer in inner:
            z = hidden @ layer["w"] + layer["b"]
            hidden = 0.5 * z * (1 + jnp.tanh(0.5 * z))
        return jnp.mean(((hidden @ last["w"] + last["b"])[:, 0] - y) ** 2)

    return loss, theta0


def clocks():
    return np.array([time.perf_counter(), time.process_time()])


# ---------------------------------------------------------------- the authors' side (peer venv)


def patch_nu_term(flows_module) -> None:
    """Replace the authors' EMA oscillation term sum X_ij u_i * u_j by sum X_ij (H u_i) * (H u_j): their
    ``apply_to_pairs`` is called on the state's second derivative with pairs of basis vectors; the patch
    hands it H u instead of u for that one call (found by its position: the third ``apply_to_pairs`` call
    in ``central_flow_substep``)."""
    import jax

    original = flows_module.apply_to_pairs
    calls = {"n": 0}

    def apply_to_pairs(f, U):
        calls["n"] += 1
        if calls["n"] % 3 == 2:  # order in the substep: dH_dw, ds_dt_X, dP_ds
            loss, w = patch_nu_term.context
            HU = jax.vmap(lambda u: jax.jvp(jax.grad(loss), (w,), (u,))[1], 1, 1)(U)
            return original(f, HU)
        return original(f, U)

    flows_module.apply_to_pairs = apply_to_pairs


def peer_side(npz: Path, out: Path, fix: bool, steps: int) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from central_flows_jax import Flow, flows
    from central_flows_jax.update_rules import RMSProp
    from jax.flatten_util import ravel_pytree

    data = np.load(npz)
    loss, theta0 = swish_problem()
    opt = RMSProp(lr=LR, beta2=DECAY, eps=0.0)
    opt.initialize_state(theta0)
    state = ravel_pytree({"t": jnp.asarray(0.0), "nu": jnp.asarray(data["nu0"])})[0]
    if fix:
        patch_nu_term(flows)
        original_substep = flows.central_flow_substep

        def substep(loss_fn, opt, w, state, refU, dt):
            patch_nu_term.context = (loss_fn, w)
            return original_substep(loss_fn, opt, w, state, refU, dt)

        flows.central_flow_substep = substep
    flow = Flow(loss, opt)
    carry = (theta0, state, jnp.asarray(data["U0"]))
    losses, predictions, eigs = [], [], []
    start = clocks()
    for n in range(steps + 1):
        carry, aux = flow.central(*carry, substeps=SUBSTEPS)
        aux = jax.device_get(aux)
        losses.append(aux["L"])
        predictions.append(aux["L"] + 0.5 * np.sum(np.diag(aux["X"]) * aux["eigs"]))
        eigs.append(aux["eigs"])
        if n == 0:
            first = clocks() - start
    total = clocks() - start
    np.savez(out, loss=losses, prediction=predictions, eigs=eigs, first=first, total=total, loss0=float(loss(theta0)))


# ---------------------------------------------------------------- gdflows side


def rmsprop_losses(loss, theta0, nu0, steps):
    import jax
    import optax

    opt = optax.rmsprop(LR, decay=DECAY, eps=0.0)
    state = (opt.init(theta0)[0]._replace(nu=nu0),) + tuple(opt.init(theta0)[1:])

    def step(carry, _):
        theta, state = carry
        updates, state = opt.update(jax.grad(loss)(theta), state, theta)
        return (theta + updates, state), loss(theta + updates)

    losses = jax.lax.scan(step, (theta0, state), None, length=steps)[1]
    return np.concatenate([[float(loss(theta0))], np.asarray(losses)])


def our_side(npz: Path, out: Path, steps: int) -> None:
    """gdflows' central flow in a fresh process (so that both sides compile once per repeat)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from gdflows.central_solver import solve_central
    from gdflows.flows.central_rmsprop import central_rmsprop

    loss, theta0 = swish_problem()
    nu0 = np.load(npz)["nu0"]
    flow = central_rmsprop(loss, LR, decay=DECAY, eps=0.0, k=K, substeps=SUBSTEPS)
    start = clocks()
    solve_central(flow, theta0, 1, chunk=100, nu0=nu0)
    first = clocks() - start
    sol = solve_central(flow, theta0, steps, chunk=100, nu0=nu0)
    total = clocks() - start
    np.savez(out, loss=sol.loss, prediction=sol.prediction, eigs=sol.eigenvalues * LR, first=first, total=total,
             status=str(sol.status))  # fmt: skip


def tracking(prediction, losses) -> str:
    from gdflows.experiments.central import centred_average, eos_onset, loss_tracking

    onset, parts = eos_onset(losses), []
    for w in (21, 101):
        t = loss_tracking(centred_average(losses, w), prediction, onset)
        parts.append(f"window {w}: within 5% on {t['fraction']:.1%}, largest gap {t['largest']:.4f}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("race", "ours", "peer"), default="race")
    parser.add_argument("--peer-python", default="/tmp/cfj/bin/python")
    parser.add_argument("--peer-fix", action="store_true", help="the authors' EMA term replaced by diag(H Sigma H)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per side, alternated (each in a fresh process)")
    parser.add_argument("--npz", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side == "peer":
        return peer_side(args.npz, args.out, args.peer_fix, args.steps)
    if args.side == "ours":
        return our_side(args.npz, args.out, args.steps)

    import jax

    jax.config.update("jax_enable_x64", True)
    loss, theta0 = swish_problem()
    nu0 = jax.grad(loss)(theta0) ** 2
    U0 = np.linalg.qr(np.asarray(jax.random.normal(jax.random.PRNGKey(1), (theta0.size, K), theta0.dtype)))[0]
    folder = Path(tempfile.mkdtemp())
    np.savez(folder / "in.npz", nu0=np.asarray(nu0), U0=U0)
    common = ["--steps", str(args.steps), "--npz", str(folder / "in.npz")]
    sides = {
        "peer": [args.peer_python, __file__, "--side", "peer", *common] + (["--peer-fix"] if args.peer_fix else []),
        "ours": [sys.executable, __file__, "--side", "ours", *common],
    }
    runs = {"peer": [], "ours": []}
    for r in range(args.repeats):
        for side in ("peer", "ours") if r % 2 == 0 else ("ours", "peer"):
            out = folder / f"{side}{r}.npz"
            subprocess.run([*sides[side], "--out", str(out)], check=True)
            runs[side].append(np.load(out))
    peer, mine = runs["peer"][0], runs["ours"][0]
    if abs(float(peer["loss0"]) - float(loss(theta0))) > 1e-14:
        sys.exit("the two processes built different networks")
    losses = rmsprop_losses(loss, theta0, nu0, args.steps)
    name = "the authors' (EMA term replaced by diag(H Sigma H))" if args.peer_fix else "the authors'"
    print(
        f"RMSProp lr {LR}, beta_2 {DECAY}, eps 0; {args.steps} GD steps, {SUBSTEPS} substeps, k = {K}; D {theta0.size}"
    )
    print(f"gdflows status: {mine['status']}; {args.repeats} runs per side, alternated, each in a fresh process")
    for label, i in (("wall", 0), ("CPU", 1)):
        ours_t = np.array([m["total"][i] for m in runs["ours"]])
        peer_t = np.array([m["total"][i] for m in runs["peer"]])
        ratio = peer_t / ours_t
        print(f"{label} seconds, compiling included: gdflows {np.median(ours_t):.1f} [{ours_t.min():.1f}, "
              f"{ours_t.max():.1f}], {name} {np.median(peer_t):.1f} [{peer_t.min():.1f}, {peer_t.max():.1f}]; "
              f"theirs / ours {np.median(ratio):.2f}x [{ratio.min():.2f}, {ratio.max():.2f}]")  # fmt: skip
    for label, a, b in (
        ("loss L(w)", mine["loss"], peer["loss"]),
        ("prediction", mine["prediction"], peer["prediction"]),
    ):
        gap = np.abs(a - b) / np.abs(b)
        print(
            f"{label}: largest relative difference {gap.max():.2e} (step {gap.argmax()}), median {np.median(gap):.2e}"
        )
    print(f"gdflows' prediction vs time-averaged RMSProp: {tracking(mine['prediction'], losses)}")
    print(f"{name} prediction vs time-averaged RMSProp: {tracking(peer['prediction'], losses)}")
    print(f"preconditioned sharpness / (2/lr), largest: gdflows {np.nanmax(mine['eigs'][:, 0]) / 2:.4f}, "
          f"theirs {np.max(peer['eigs'][:, 0]) / 2:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
