"""Top Hessian eigenvalue: gdflows (Lanczos) vs PyHessian (power iteration), same MLP and data.

Both run in float64 on the CPU on the same network and weights (a 784-6-10
tanh MLP, MSE, the 4,000 training images of the bundled MNIST subset) at the
same tolerance value ``--tol``: PyHessian stops when the eigenvalue's relative
change between power iterations is below it; gdflows when the relative
residual |H u - lambda u| / |lambda| is below it (a stricter test). Both
eigenvalues are compared with a tight reference (gdflows at tol 1e-10).
Printed: time (gdflows compiled, second call; PyHessian as called), HVPs,
eigenvalue, error, and the time ratio. Nothing is asserted.

PyTorch and pyhessian are not gdflows dependencies; install them in their
own environment and give this script both:

    python3.11 -m venv /tmp/peers
    /tmp/peers/bin/pip install -r benchmarks/requirements-peers.txt
    .venv/bin/python benchmarks/pyhessian_peer.py --peer-python /tmp/peers/bin/python

The gdflows half runs here; the PyHessian half runs in ``--peer-python``
(this same file with ``--side pyhessian``), reading the weights and data
from a temporary .npz.
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

WIDTH = 6


def gdflows_side(npz: Path, tol: float) -> dict:
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    jax.config.update("jax_enable_x64", True)  # the race is at equal float64 accuracy
    from gdflows.curvature import chunked_loss, hessian_eigenpairs
    from gdflows.data import load_dataset
    from gdflows.models.losses import mse
    from gdflows.models.mlp import mlp

    data = load_dataset("mnist_subset", dtype="float64")
    model = mlp(data.input_shape, data.num_classes, depth=1, width=WIDTH, activation="tanh")
    params = model.init(jax.random.PRNGKey(0))
    theta, unravel = ravel_pytree(params)
    x, y = data.x_train.reshape(len(data.y_train), -1), data.y_train
    np.savez(npz, x=x, y=y, **{f"{k}{i}": np.asarray(p[k]) for i, p in enumerate(params) for k in ("w", "b")})

    def example_loss(th, example):
        xe, ye = example
        return mse(model.apply(unravel(th), xe[None]), ye[None])

    loss = chunked_loss(example_loss, (jnp.asarray(data.x_train), jnp.asarray(y)), 500)
    reference = float(hessian_eigenpairs(loss, theta, 1, tol=1e-10).values[0])
    hessian_eigenpairs(loss, theta, 1, tol=tol)  # compile
    start = time.perf_counter()
    pairs = hessian_eigenpairs(loss, theta, 1, tol=tol)
    value = float(pairs.values[0])
    return dict(time=time.perf_counter() - start, value=value, hvps=int(pairs.hvps), reference=reference)


def pyhessian_side(npz: Path, tol: float) -> dict:
    import importlib

    import torch
    from pyhessian import hessian

    pyhessian_module = importlib.import_module("pyhessian.hessian")  # the module, not the class

    hvps = [0]
    product = pyhessian_module.hessian_vector_product

    def counted_product(*args):
        hvps[0] += 1
        return product(*args)

    pyhessian_module.hessian_vector_product = counted_product  # count its HVPs; the maths is untouched

    torch.set_default_dtype(torch.float64)
    arrays = np.load(npz)
    net = torch.nn.Sequential(torch.nn.Linear(784, WIDTH), torch.nn.Tanh(), torch.nn.Linear(WIDTH, 10))
    with torch.no_grad():
        for i, layer in enumerate((net[0], net[2])):
            layer.weight.copy_(torch.from_numpy(arrays[f"w{i}"].T.copy()))
            layer.bias.copy_(torch.from_numpy(arrays[f"b{i}"]))
    x = torch.from_numpy(arrays["x"])
    onehot = torch.nn.functional.one_hot(torch.from_numpy(arrays["y"]).long(), 10).double()

    def criterion(out, target):  # gdflows' mse: (1/N) sum_n (1/2) |f_n - e_{y_n}|^2
        return 0.5 * ((out - target) ** 2).sum(dim=1).mean()

    start = time.perf_counter()
    comp = hessian(net, criterion, data=(x, onehot), cuda=False)
    values, _ = comp.eigenvalues(maxIter=1000, tol=tol, top_n=1)
    return dict(time=time.perf_counter() - start, value=float(values[0]), hvps=hvps[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["both", "pyhessian"], default="both")
    parser.add_argument("--peer-python", default="/tmp/peers/bin/python")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--npz", type=Path)
    args = parser.parse_args()
    if args.side == "pyhessian":
        print(json.dumps(pyhessian_side(args.npz, args.tol)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "mlp.npz"
        ours = gdflows_side(npz, args.tol)
        run = subprocess.run(
            [args.peer_python, __file__, "--side", "pyhessian", "--npz", str(npz), "--tol", str(args.tol)],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            sys.exit(f"the PyHessian side failed in {args.peer_python}:\n{run.stderr}")
        peer = json.loads(run.stdout.strip().splitlines()[-1])
    ref = ours["reference"]
    print(f"top Hessian eigenvalue, 784-{WIDTH}-10 tanh MLP, 4000 MNIST images, float64, tol {args.tol:g}")
    print(
        f"  gdflows Lanczos : {ours['time']:.3f} s, {ours['hvps']} HVPs, lambda_0 = {ours['value']:.12g}, "
        f"relative error {abs(ours['value'] - ref) / ref:.1e}"
    )
    print(
        f"  PyHessian power : {peer['time']:.3f} s, {peer['hvps']} HVPs, lambda_0 = {peer['value']:.12g}, "
        f"relative error {abs(peer['value'] - ref) / ref:.1e}"
    )
    print(f"  speed ratio PyHessian / gdflows = {peer['time'] / ours['time']:.1f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
