"""gdflows train at scale: the curvature subset, chunks and devices reach the problem, the diagnosis is on the
subset, the tolerance follows the dtype and a bad one is refused before any data is loaded, and 4 host devices
write the metrics of 1."""

import functools
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from gdflows.experiments import network_setup
from gdflows.experiments.cli import main
from gdflows.experiments.configs import NetworkSetup, TrainConfig
from gdflows.experiments.report.runs import read_csv
from gdflows.problems.network import curvature_subset

TINY = ["--net.n-train", "50", "--net.n-test", "20", "--net.downsample", "7", "--net.width", "4", "--net.depth", "1"]


def _fail(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_flags_reach_the_problem():
    cfg = TrainConfig(net=NetworkSetup(n_train=50, n_test=20, downsample=7, width=8, curvature_size=20, chunk_size=16))
    problem = cfg.net.build(devices=1, tol=1e-9)
    assert len(problem.curvature_index) == 20 and problem.chunk_size == 16
    assert problem.mesh.devices.size == 1 and problem.tol == 1e-9
    assert np.bincount(problem.data.y_train[problem.curvature_index]).tolist() == [2] * 10  # class-balanced
    whole = NetworkSetup(n_train=50, downsample=7, width=8, curvature_size=None).build()
    assert len(whole.curvature_index) == 50 and whole.chunk_size == 50  # the default chunk, capped at N


def test_the_diagnosis_and_the_probe_are_on_the_curvature_subset(tmp_path):
    main(
        ["train", *TINY, "--net.curvature-size", "20", "--steps", "4", "--log-every", "4", "--lr", "0.05"]
        + ["--k", "1", "--out", str(tmp_path)]
    )
    rows = read_csv(tmp_path / "metrics.csv")
    problem = NetworkSetup(n_train=50, n_test=20, downsample=7, width=4, depth=1).build()  # D = 118
    x, y = problem.data.x_train, problem.data.y_train
    subset = curvature_subset(y, 20)
    theta = problem.theta0
    for _ in range(4):  # full-batch GD on the whole training set
        theta = theta - 0.05 * jax.grad(problem.batch_loss)(theta, x, y)

    def e_s(t):
        return problem.batch_loss(t, x[subset], y[subset])

    row = rows[-1]
    np.testing.assert_allclose(float(row["loss"]), problem.batch_loss(theta, x, y), rtol=1e-10)
    np.testing.assert_allclose(float(row["curvature_loss"]), e_s(theta), rtol=1e-10)
    g = jax.grad(e_s)(theta)
    np.testing.assert_allclose(float(row["loss_next"]), e_s(theta - 0.05 * g), rtol=1e-10)
    np.testing.assert_allclose(float(row["grad_norm"]), np.linalg.norm(g), rtol=1e-8)
    lam0 = np.linalg.eigvalsh(np.asarray(jax.hessian(e_s)(theta)))[-1]
    np.testing.assert_allclose(float(row["lambda_0"]), lam0, rtol=1e-7)
    predicted = np.argmax(np.asarray(problem.logits(theta, problem.data.x_test)), -1)
    assert float(row["test_acc"]) == pytest.approx(np.mean(predicted == problem.data.y_test), abs=1e-12)


def test_float32_tol_follows_the_dtype_and_a_bad_tol_is_refused_before_the_data(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r32"
    main(["train", *TINY, "--net.dtype", "float32", "--steps", "0", "--k", "1", "--out", str(out)])
    row = read_csv(out / "metrics.csv")[0]
    assert row["eig_converged"] == "True" and row["pf_converged"] == "True"
    problem32 = NetworkSetup(n_train=50, n_test=20, downsample=7, width=4, depth=1, dtype="float32").build()
    assert problem32.tol == pytest.approx(100 * np.finfo(np.float32).eps, rel=1e-12)  # 1.2e-5: 100 eps
    # Reference: the same point and subset (all 50 images) in float64, with a dense Hessian.
    assert len(problem32.curvature_index) == 50
    problem = NetworkSetup(n_train=50, n_test=20, downsample=7, width=4, depth=1).build()
    e = functools.partial(problem.batch_loss, x=problem.data.x_train, y=problem.data.y_train)
    theta, h = np.asarray(problem32.theta0, np.float64), float(row["rate"])
    loss, g, hessian = jax.jit(lambda t: (e(t), jax.grad(e)(t), jax.hessian(e)(t)))(theta)
    lam, U = np.linalg.eigh(np.asarray(hessian))
    lam, u0, g = lam[::-1], U[:, -1], np.asarray(g)
    c = U[:, ::-1].T @ g
    np.testing.assert_allclose(float(row["loss"]), loss, rtol=1e-5)
    np.testing.assert_allclose(float(row["grad_norm"]), np.linalg.norm(g), rtol=1e-5)
    np.testing.assert_allclose(float(row["lambda_0"]), lam[0], rtol=1e-5)
    np.testing.assert_allclose(abs(float(row["c_0"])), abs(u0 @ g), rtol=1e-4)
    re_sc = np.log(np.abs(1 - h * lam)) / (h * lam)  # Re sc = ln|1 - h lambda| / (h lambda), docs/theory.md 4.1
    np.testing.assert_allclose(float(row["dE_dt"]), np.sum(re_sc * c**2), rtol=1e-4)

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before --tol was checked")

    monkeypatch.setattr(network_setup, "load_dataset", no_data)
    bad = tmp_path / "bad"
    err = _fail(["train", *TINY, "--net.dtype", "float32", "--tol", "1e-7", "--out", str(bad)], capsys)
    assert "--tol 1e-07 is below 10 * machine epsilon of float32" in err and not bad.exists()
    err = _fail(["train", *TINY, "--devices", str(jax.local_device_count() + 1), "--out", str(bad)], capsys)
    assert f"--devices {jax.local_device_count() + 1} exceeds" in err and not bad.exists()
    err = _fail(["train", *TINY, "--net.curvature-size", "0", "--out", str(bad)], capsys)
    assert "--net.curvature-size must be an integer >= 1" in err and not bad.exists()


FOUR_DEVICES = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    from gdflows.experiments.configs import NetworkSetup, TrainConfig
    from gdflows.experiments.report.runs import Run
    from gdflows.experiments.train import train
    assert len(jax.devices()) == 4, jax.devices()
    net = NetworkSetup(n_train=48, n_test=20, downsample=7, depth=1, width=4, curvature_size=24, chunk_size=8)
    for name, devices in (("one", 1), ("four", None)):
        cfg = TrainConfig(out=sys.argv[1] + "/" + name, net=net, lr=0.5, steps=6, log_every=3, k=1, batch_size=8,
                          devices=devices)
        train(net.build(devices=devices), cfg, Run.open(cfg.out, cfg))
    """
)


def test_four_host_devices_write_the_metrics_of_one(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env |= {"GDFLOWS_QUIET": "1", "GDFLOWS_NO_CACHE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES, str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    one, four = read_csv(tmp_path / "one" / "metrics.csv"), read_csv(tmp_path / "four" / "metrics.csv")
    assert [r["step"] for r in four] == ["0", "3", "6"] and four[-1]["outcome"] == "completed"
    for a, b in zip(one, four):
        for key, value in a.items():
            try:
                want = float(value)
            except ValueError:
                assert b[key] == value, key
                continue
            assert float(b[key]) == pytest.approx(want, rel=1e-9, abs=1e-12), key
