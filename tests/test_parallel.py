"""Data parallelism: 4 forced host devices and 2 processes (CPU collectives) give the numbers of 1 device.

Each run builds the same small network problem and prints its loss, gradient,
HVP, loss/accuracy, three minibatch SGD steps, two full-batch DAL steps and a
diagnosis; the tests compare them with the 1-device numbers.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from gdflows import parallel
from gdflows.errors import GDFlowsError

QUANTITIES = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np, optax
    jax.config.update("jax_enable_x64", True)
    from test_network_problem import toy_data
    from gdflows.experiments.network_setup import diagnose_network
    from gdflows.experiments.steps import network_steps
    from gdflows.optim import dal
    from gdflows.problems.network import network_problem

    def quantities(devices):
        # mlp: D = 83 <= 256, so the diagnosis is dense (HVPs over the sharded chunks)
        p = network_problem("mlp", toy_data(n=40, shape=(4, 4, 1)), depth=1, width=4,
                            chunk_size=8, curvature_size=24, devices=devices)
        theta = p.theta0
        v = jnp.linspace(-1.0, 1.0, theta.size)
        E, g = p.value_and_grad(theta)
        out = {"devices": int(p.mesh.devices.size), "E": E, "g": g, "Hv": p.hvp(theta, v),
               "eval": jnp.stack(p.evaluate(theta, "test"))}
        sgd = optax.sgd(0.2)
        idx = np.random.default_rng(0).integers(0, 40, (3, 8))
        t, _, values, _ = network_steps(p, sgd)(theta, p.replicate(sgd.init(theta)), idx)
        out |= {"sgd_theta": t, "sgd_values": values}
        opt = dal(p=1.0, max_lr=20.0)
        t, _, _, rates = network_steps(p, opt, record=lambda s: s.h)(theta, p.replicate(opt.init(theta)),
                                                                  np.zeros((2, 0), np.int32))
        out |= {"dal_theta": t, "dal_rates": rates}
        d = diagnose_network(p, theta, 0.5, k=2)
        out |= {"lambda": d.eigenvalues, "dE_dt": np.real(d.energy_rate), "c": np.abs(d.c)}
        return {k: np.asarray(val).tolist() for k, val in out.items()}
    """
)

FOUR_DEVICES = (
    QUANTITIES
    + """
assert len(jax.devices()) == 4, jax.devices()
print(json.dumps([quantities(1), quantities(None)]))
"""
)

PROCESS = (
    QUANTITIES
    + """
from gdflows import parallel
assert parallel.initialize()  # from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
assert jax.process_count() == 2 and len(jax.devices()) == 2
q = quantities(None)
print("RESULT " + json.dumps(q))
"""
)


def _env(**extra):
    tests = str(Path(__file__).parent)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)
    return env | extra


def assert_same(got: dict, want: dict, rtol=1e-10):
    for key in want:
        if key == "devices":
            continue
        a, b = np.asarray(got[key], float), np.asarray(want[key], float)
        scale = max(np.max(np.abs(b)), 1e-300)
        assert np.max(np.abs(a - b)) <= rtol * scale, (key, a, b)


def test_four_host_devices_equal_one_device():
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run = subprocess.run([sys.executable, "-c", FOUR_DEVICES], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    one, four = json.loads(run.stdout.strip().splitlines()[-1])
    assert (one["devices"], four["devices"]) == (1, 4)
    assert_same(four, one)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process():
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS],
            env=_env(JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o + e for o, e in outs)
    results = [json.loads(next(line for line in o.splitlines() if line.startswith("RESULT "))[7:]) for o, _ in outs]
    single = subprocess.run(
        [sys.executable, "-c", QUANTITIES + "\nprint('RESULT ' + json.dumps(quantities(None)))"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stdout + single.stderr
    want = json.loads(single.stdout.split("RESULT ")[-1])
    assert want["devices"] == 1 and results[0]["devices"] == 2
    for got in results:
        assert_same(got, want)


def test_single_process_mesh_and_errors(monkeypatch):
    for name in parallel.ENV:
        monkeypatch.delenv(name, raising=False)
    assert parallel.initialize() is False  # no coordinator: one process, nothing done
    mesh = parallel.batch_mesh()
    assert mesh.axis_names == ("batch",) and mesh.devices.size == jax.local_device_count()
    with pytest.raises(GDFlowsError, match="devices must be an integer in"):
        parallel.batch_mesh(jax.local_device_count() + 1)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(GDFlowsError, match="JAX_NUM_PROCESSES must be an integer"):
        parallel.initialize()
    with pytest.raises(GDFlowsError, match="process_id must be in"):
        parallel.initialize(num_processes=2, process_id=2)
