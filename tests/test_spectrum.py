"""The Hessian's density (SLQ), trace (XTrace, Hutchinson) and diagonal against dense eigendecompositions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature import hessian
from gdflows.curvature.spectrum import hessian_diagonal, hessian_trace, spectral_density
from gdflows.errors import GDFlowsError
from gdflows.params import ravel


def _quadratic(dim=60, spikes=(20.0, 35.0, 50.0), seed=0):
    """E = theta^T H theta / 2 with a bulk in [0, 1] and a few outliers, as a network's Hessian has."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    lam = np.concatenate([rng.uniform(0, 1, dim - len(spikes)), spikes])
    H = jnp.asarray(Q @ np.diag(lam) @ Q.T)
    return (lambda t: 0.5 * t @ H @ t), H, lam


def _net():
    """A 4-6-3 tanh MLP's parameters (dict) and its MSE loss on 9 examples (float64)."""
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    params = {
        "w1": jax.random.normal(keys[0], (4, 6), jnp.float64),
        "b1": jnp.full(6, 0.1),
        "w2": jax.random.normal(keys[1], (6, 3), jnp.float64),
    }
    x, y = jax.random.normal(keys[2], (9, 4)), jax.random.normal(keys[3], (9, 3))

    def loss(p):
        return 0.5 * jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)

    return loss, params


def test_each_probe_is_a_gauss_quadrature_exact_to_degree_2m_minus_1():
    loss, H, _ = _quadratic()
    key, m = jax.random.key(4), 6
    sd = spectral_density(loss, jnp.zeros(60), probes=1, order=m, key=key)
    v = jax.random.normal(key, (1, 60), jnp.float64)[0]
    v = np.asarray(v / jnp.linalg.norm(v))
    for k in range(2 * m):
        exact = v @ np.linalg.matrix_power(np.asarray(H), k) @ v
        assert np.sum(sd.weights * sd.nodes**k) == pytest.approx(exact, rel=1e-8)
    assert sd.nodes.shape == sd.weights.shape == (1, m)


def test_density_over_many_probes_matches_the_dense_smoothed_density():
    loss, _, lam = _quadratic()
    sd = spectral_density(loss, jnp.zeros(60), probes=300, order=60)
    x, sigma = np.linspace(-1, 52, 800), 0.3
    phi, sem = sd.density(x, sigma)
    dense = np.exp(-0.5 * ((x[:, None] - lam[None]) / sigma) ** 2).sum(1) / (60 * sigma * np.sqrt(2 * np.pi))
    assert np.trapezoid(phi, x) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(np.abs(phi - dense), x) < 0.1  # L1 distance of two probability densities
    assert np.mean(np.abs(phi - dense) <= 4 * sem + 1e-6) > 0.95  # the spread covers the error
    for k in (1, 2):
        est, se = sd.moment(k)
        assert abs(est - np.mean(lam**k)) < 4 * se


def test_xtrace_is_exact_on_a_low_rank_hessian_and_within_its_error_on_a_full_one():
    rng = np.random.default_rng(2)
    U = rng.normal(size=(80, 4))
    H = jnp.asarray(U @ U.T)  # rank 4 < probes / 2

    def loss(t):
        return 0.5 * t @ H @ t

    est = hessian_trace(loss, jnp.zeros(80), probes=10)
    assert est.value == pytest.approx(float(jnp.trace(H)), rel=1e-9) and est.probes == 20
    loss, H, lam = _quadratic(dim=200)
    xt = hessian_trace(loss, jnp.zeros(200), probes=20)
    hutch = hessian_trace(loss, jnp.zeros(200), probes=20, method="hutchinson")
    assert abs(xt.value - lam.sum()) < 4 * xt.sem and abs(hutch.value - lam.sum()) < 4 * hutch.sem
    assert xt.sem < hutch.sem / 5  # the outliers are captured, not sampled


def test_trace_and_density_of_a_network_agree_with_its_dense_hessian():
    loss, params = _net()
    flat, unravel = ravel(params)
    lam = np.linalg.eigvalsh(np.asarray(hessian(lambda t: loss(unravel(t)), flat)))
    est = hessian_trace(loss, params, probes=20)
    assert abs(est.value - lam.sum()) < 4 * est.sem + 1e-10
    sd = spectral_density(loss, params, probes=50, order=20)
    mean, se = sd.trace()
    assert abs(mean - lam.sum()) < 4 * se
    assert sd.nodes.max() == pytest.approx(lam.max(), rel=1e-8)  # Lanczos finds the top eigenvalue


def test_diagonal_is_exact_for_a_diagonal_hessian_and_comes_back_like_the_params():
    scale = {"a": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array([[4.0, 5.0]])}

    def loss(p):
        return sum(0.5 * jnp.sum(scale[k] * p[k] ** 2) for k in p)

    params = {k: jnp.ones_like(v) for k, v in scale.items()}
    diag, sem = hessian_diagonal(loss, params, probes=5)
    for k in scale:
        np.testing.assert_allclose(diag[k], scale[k], rtol=1e-12)  # v_i^2 = 1 for Rademacher v
        np.testing.assert_allclose(sem[k], 0, atol=1e-12)


def test_diagonal_of_a_network_is_within_its_error():
    loss, params = _net()
    flat, unravel = ravel(params)
    dense = np.diag(np.asarray(hessian(lambda t: loss(unravel(t)), flat)))
    diag, sem = hessian_diagonal(lambda t: loss(unravel(t)), flat, probes=400)
    assert np.mean(np.abs(np.asarray(diag) - dense) <= 4 * np.asarray(sem) + 1e-12) > 0.95


def test_estimates_compute_in_the_inputs_dtype():
    loss, _, _ = _quadratic(dim=30)
    theta = jnp.zeros(30, jnp.float32)
    assert spectral_density(loss, theta, probes=2, order=5).nodes.dtype == np.float32
    assert hessian_diagonal(loss, theta, probes=3)[0].dtype == jnp.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda loss, t: hessian_trace(loss, t, method="hutch"), "method must be one of xtrace, hutchinson"),
        (lambda loss, t: hessian_trace(loss, t, probes=1), "probes must be an integer >= 2"),
        (lambda loss, t: spectral_density(loss, t, order=31), "order must be an integer >= 1 and <= 30"),
        (lambda loss, t: spectral_density(loss, t, probes=2, order=3).density([0.0], 0.0), "sigma must be > 0"),
        (lambda loss, t: hessian_diagonal(loss, t + 1j), "real parameters"),
    ],
)
def test_bad_input_is_refused_with_the_fix(call, match):
    loss, _, _ = _quadratic(dim=30)
    with pytest.raises(GDFlowsError, match=match):
        call(loss, jnp.zeros(30))
