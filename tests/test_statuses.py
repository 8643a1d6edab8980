"""A Krylov PF field that misses its tolerance is never silent: it reaches integrate's Status, and every
diagnosis (pf_converged, pf_error, eig_converged) down to train's metrics.csv."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.experiments.configs import NetworkSetup, TrainConfig
from gdflows.experiments.report.runs import read_csv
from gdflows.flows import principal
from gdflows.problems.quadratic import Quadratic
from gdflows.status import Status
from gdflows.validation import default_tol


def _quadratic(dim):
    lam = np.linspace(0.1, 3.0, dim)
    theta0 = jnp.asarray(np.cos(np.arange(dim)), jnp.float64)
    return Quadratic(jnp.diag(jnp.asarray(lam))), theta0, lam


def test_an_unconverged_krylov_field_reaches_the_solution_status():
    loss, theta0, _ = _quadratic(12)
    starved = principal(loss, 0.5, method="lanczos", max_size=3, tol=1e-10)
    _, info = starved.evaluate(theta0)
    assert not bool(info.converged) and float(info.error) > 1e-10 * float(jnp.linalg.norm(theta0))
    sol = gdflows.integrate(starved, theta0, steps=1, rtol=1e-6, atol=1e-9)
    assert sol.status is Status.FIELD_NOT_CONVERGED and "max_size" in sol.status.message
    assert sol.unconverged_time == pytest.approx(0.5)  # every evaluation over t in [0, h] missed its tolerance
    _, enough = principal(loss, 0.5, method="lanczos", max_size=12, tol=1e-10).evaluate(theta0)
    assert bool(enough.converged) and float(enough.error) == 0.0  # at max_size = D the field is exact


def test_train_metrics_carry_the_pf_status(tmp_path):
    net = NetworkSetup(n_train=50, n_test=20, downsample=7, width=8)  # D = 298: the Krylov path
    cfg = TrainConfig(out=tmp_path / "r", net=net, lr=0.05, steps=0, k=1, max_hvps=4)
    cfg.run()  # diagnose with a 4-HVP budget at D = 298
    rows = read_csv(tmp_path / "r" / "metrics.csv")
    assert [r["pf_converged"] for r in rows] == ["False"] and float(rows[0]["pf_error"]) > default_tol("float64")
    assert rows[0]["eig_converged"] == "False" and rows[0]["outcome"] == "completed"
