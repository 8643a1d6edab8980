"""Data-parallel gradient, HVPs, eigenpairs, trace and SLQ density on 4 forced host devices equal the 1-device
results."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh
    from curvature_problems import tanh_mlp
    from gdflows.curvature import hessian_eigenpairs, hessian_trace, hvp_of, grad_of, spectral_density

    assert len(jax.devices()) == 4, jax.devices()
    single, theta, _ = tanh_mlp(n=70, din=5, width=10, chunk_size=32, seed=4)
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    sharded = single.sharded(mesh)
    assert len(sharded.weights.sharding.device_set) == 4
    v = np.random.default_rng(0).normal(size=theta.shape)
    out = {}
    for name, loss in (("single", single), ("sharded", sharded)):
        pairs = hessian_eigenpairs(loss, theta, 3, tol=1e-10, method="lanczos")
        trace = hessian_trace(loss, theta, probes=8).value
        nodes = spectral_density(loss, theta, probes=2, order=12).nodes
        out[name] = [grad_of(loss)(theta), hvp_of(loss)(theta, v), pairs.values, trace, nodes]
    # The loss is a jit argument (as in hessian_eigenpairs and the PF): its sharded data make the
    # per-chunk sums all-reduces across devices, i.e. data parallel (a closed-over constant would not).
    hlo = jax.jit(lambda loss, th, u: hvp_of(loss)(th, u)).lower(sharded, theta, v).compile().as_text()
    assert "all-reduce" in hlo
    for a, b in zip(out["single"], out["sharded"]):
        err = float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(a))))
        assert err <= 1e-10, err
    print("OK")
    """
)


def test_four_host_devices_match_one_device():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        PYTHONPATH=str(Path(__file__).parent),
        JAX_PLATFORMS="cpu",
    )
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "OK" in run.stdout, run.stdout + run.stderr
