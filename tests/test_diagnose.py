"""diagnose() against the dense Hessian's eigendecomposition."""

import jax.numpy as jnp
import numpy as np
import pytest

from curvature_problems import tanh_mlp
from gdflows import diagnose
from gdflows.curvature import gradient, hessian
from gdflows.errors import GDFlowsError
from gdflows.problems.quadratic import Quadratic
from gdflows.stability import regime, stability_coefficients


def test_diagnosis_matches_dense_quantities():
    loss, theta, _ = tanh_mlp(n=64, din=5, width=10, chunk_size=32, seed=4)
    H = np.asarray(hessian(loss, theta))
    g = np.asarray(gradient(loss)(theta))
    lam, U = np.linalg.eigh(H)
    lam, U = lam[::-1], U[:, ::-1]
    lr = 1.5 / lam[0]
    k = 4
    d = diagnose(loss, theta, lr, k, tol=1e-10)
    c = U.T @ g
    sc = np.asarray(stability_coefficients(lam, lr))
    np.testing.assert_allclose(d.eigenvalues, lam[:k], rtol=1e-10)
    np.testing.assert_allclose(np.abs(d.c), np.abs(c[:k]), rtol=1e-7, atol=1e-12)  # sign of u_i is free
    np.testing.assert_allclose(d.sc, sc[:k], rtol=1e-10)
    np.testing.assert_allclose(np.abs(d.vectors @ U[:, :k]), np.eye(k), atol=1e-7)
    np.testing.assert_allclose(d.c2_fraction, c[:k] ** 2 / (g @ g), rtol=1e-7, atol=1e-14)
    np.testing.assert_allclose(d.energy_rate_topk, np.sum(sc[:k] * c[:k] ** 2), rtol=1e-7)
    np.testing.assert_allclose(d.energy_rate, np.sum(sc * c**2), rtol=1e-8)
    np.testing.assert_allclose(d.hg_over_g, np.linalg.norm(H @ g) / np.linalg.norm(g), rtol=1e-12)
    np.testing.assert_allclose(d.quadratic_rate, -(g @ g) + 0.5 * lr * (g @ H @ g), rtol=1e-12)
    assert list(d.regimes) == list(regime(lam[:k], lr))
    assert d.regimes[0] == "oscillating convergence"

    row = d.as_row()
    assert row["lambda_0"] == pytest.approx(lam[0], rel=1e-10)
    assert row["regime_0"] == "oscillating convergence"
    assert row["dE_dt_topk"] + row["dE_dt_rest"] == pytest.approx(row["dE_dt"], rel=1e-12)
    assert row["two_over_h"] == pytest.approx(2 / lr)
    assert row["dE_dt_quadratic"] == d.quadratic_rate


def test_the_one_step_quadratic_model_is_gds_loss_change_on_a_quadratic():
    # E = theta^T A theta / 2 + b^T theta: (E(theta - h g) - E(theta)) / h = -|g|^2 + (h/2) g^T A g exactly
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    A = Q @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1, -0.2]) @ Q.T
    A, b, theta = (A + A.T) / 2, rng.normal(size=6), rng.normal(size=6)
    problem = Quadratic(A, b)
    for lr in (0.1, 0.5, 0.9):  # h lambda_0 = 0.3, 1.5 (oscillating), 2.7 (diverging)
        change = (problem(theta - lr * (A @ theta + b)) - problem(theta)) / lr
        assert diagnose(problem, theta, lr, 2).quadratic_rate == pytest.approx(float(change), rel=1e-12)


def test_the_pfs_own_one_step_prediction_is_gds_loss_change_on_a_quadratic_in_every_regime():
    rng = np.random.default_rng(8)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    A = Q @ np.diag([3.0, 1.0, 0.5, 0.1, -0.2]) @ Q.T
    A, b, theta = (A + A.T) / 2, rng.normal(size=5), rng.normal(size=5)
    problem = Quadratic(A, b)
    for lr in (0.1, 0.5, 0.9):  # h lambda_0 = 0.3, 1.5 (oscillating), 2.7 (diverging: the PF turns complex)
        change = (problem(theta - lr * (A @ theta + b)) - problem(theta)) / lr
        d = diagnose(problem, theta, lr, 2, tol=1e-12, pf_step=True)  # the step solved to tol, relative to its length
        assert d.pf_step_rate == pytest.approx(float(change), rel=1e-8) and d.pf_step_status == "ok"
        assert d.as_row()["dE_dt_pf_step"] == d.pf_step_rate
    assert "dE_dt_pf_step" not in diagnose(problem, theta, 0.1, 2).as_row()


def test_the_one_step_pf_is_exact_at_network_scale_in_float32_where_theta_dwarfs_the_step():
    # A diagonal quadratic in D = 3,000 (Krylov path), float32, at the edge (h lambda_0 = 1.95) with theta's
    # components ~0.3 and GD's step ~1e-5 each, most of the gradient along the stiff direction: an error norm
    # relative to |theta| (RMS over D) accepted one RK step off by ~20% of the loss change here.
    rng = np.random.default_rng(9)
    dim, h = 3000, 0.028
    a = np.concatenate([[1.95 / h], rng.uniform(0.01, 0.5, dim - 1) / h]).astype(np.float32)
    centre = rng.normal(0, 0.3, dim).astype(np.float32)
    offset = np.concatenate([[-0.056 / a[0]], rng.normal(0, 0.04 / np.sqrt(dim), dim - 1) / a[1:]])
    theta = jnp.asarray(centre + offset.astype(np.float32))

    def loss(t):
        return 0.5 * jnp.sum(a * (t - centre) ** 2)

    r = np.asarray(theta, np.float64) - centre  # E = sum a r^2 / 2, g = a r, GD: r -> (1 - h a) r
    gd = np.sum(a * r**2 * ((1 - h * a) ** 2 - 1)) / (2 * h)
    d = diagnose(loss, theta, h, 1, tol=1e-4, pf_step=True)
    assert d.pf_step_status == "ok" and d.pf_step_rate == pytest.approx(gd, rel=0.01)


def test_the_pfs_one_step_prediction_on_a_net_tends_to_gds_change_as_h_shrinks():
    # E(theta_PF(h)) - E(theta) and E(theta - h g) - E(theta) agree to O(h^3) (the PF follows GD to second order)
    loss, theta, full = tanh_mlp(n=32, din=3, width=4, chunk_size=16, seed=2)
    g = np.asarray(gradient(loss)(theta))
    lam = diagnose(loss, theta, 0.01, 1).eigenvalues[0]
    gaps = []
    for h in (0.1 / lam, 0.05 / lam):
        d = diagnose(loss, theta, h, 1, pf_step=True)
        actual = (float(full(theta - h * g)) - float(full(theta))) / h
        gaps.append(abs(d.pf_step_rate - actual))
    assert gaps[1] < gaps[0] / 3  # O(h^2) in the rate: a halved h shrinks the gap about 4x (O(h): 2x)


def test_bad_k_names_the_fix():
    loss, theta, _ = tanh_mlp(n=16, chunk_size=16)
    with pytest.raises(GDFlowsError, match="k must be"):
        diagnose(loss, theta, 0.1, theta.shape[0] + 1)
