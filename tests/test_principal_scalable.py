"""The Krylov PF field (principal(method="lanczos")) against the dense formula U diag(sc) U^{-1} g."""

import jax.numpy as jnp
import numpy as np
import pytest

from curvature_problems import tanh_mlp
from gdflows.curvature import gradient, hessian
from gdflows.errors import GDFlowsError
from gdflows.flows.principal import principal
from gdflows.stability import stability_coefficients


def principal_scalable(loss, lr, **kw):
    return principal(loss, lr, method="lanczos", **kw)


def dense_pf(loss, theta, lr):
    """Reference: numpy eig of the dense Hessian, field = U diag(sc) U^{-1} g."""
    H = np.asarray(hessian(loss, theta))
    g = np.asarray(gradient(loss)(theta))
    lam, U = np.linalg.eig(H)
    return U @ (np.asarray(stability_coefficients(lam, lr)) * np.linalg.solve(U, g)), lam, g


@pytest.fixture(scope="module")
def problem():
    loss, theta, _ = tanh_mlp(n=64, din=5, width=10, chunk_size=32, seed=4)
    lam = np.linalg.eigvalsh(np.asarray(hessian(loss, theta)))
    return loss, theta, 2.3 / lam[-1]  # h*lambda_0 = 2.3 > 2, several others in (1, 2)


def test_matches_dense_at_a_real_state_beyond_the_edge(problem):
    loss, theta, lr = problem
    ref, lam, g = dense_pf(loss, theta, lr)
    x = lr * lam.real
    assert x.max() > 2 and np.sum((x > 1) & (x < 2)) >= 2 and x.min() < 0
    field, info = principal_scalable(loss, lr, tol=1e-10).evaluate(theta)
    assert bool(info.converged)
    np.testing.assert_allclose(field, ref, rtol=1e-9, atol=1e-9 * np.linalg.norm(ref))
    assert float(info.error) <= 1e-8 * np.linalg.norm(ref)
    outlier = x > 0.9  # the default outlier threshold on h lambda (docs/theory.md): exactly these, NaN after
    found = np.asarray(info.outliers.real)
    np.testing.assert_allclose(np.sort(found[~np.isnan(found)]), np.sort(lam.real[outlier]), rtol=1e-9)
    np.testing.assert_allclose(info.energy_rate, g @ ref, rtol=1e-9)
    as_complex, info_c = principal_scalable(loss, lr, tol=1e-10).evaluate(theta + 0j)  # real-arithmetic branch
    assert as_complex.dtype == info_c.outliers.dtype == jnp.complex128
    np.testing.assert_allclose(as_complex, ref, rtol=1e-9, atol=1e-9 * np.linalg.norm(ref))


def test_matches_dense_at_a_complex_state(problem):
    loss, theta, lr = problem
    z = theta + 1e-3j * jnp.asarray(np.random.default_rng(0).normal(size=theta.shape))
    ref, _, _ = dense_pf(loss, z, lr)
    field, info = principal_scalable(loss, lr, tol=1e-10).evaluate(z)
    np.testing.assert_allclose(field, ref, rtol=1e-8, atol=1e-8 * np.linalg.norm(ref))


def test_error_estimate_tracks_a_loose_tolerance(problem):
    loss, theta, lr = problem
    ref, _, _ = dense_pf(loss, theta, lr)
    field, info = principal_scalable(loss, lr, tol=1e-4).evaluate(theta)
    true_error = np.linalg.norm(field - ref)
    assert true_error <= 1e-4 * np.linalg.norm(ref)
    assert true_error <= 10 * float(info.error)  # the estimate is not optimistic by more than 10x


def test_field_signature_is_theta_t(problem):
    loss, theta, lr = problem
    pf = principal_scalable(loss, lr, tol=1e-4)
    np.testing.assert_allclose(pf(theta, 0.0), pf.evaluate(theta)[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0), "learning rate"),
        (dict(tol=0.0), "tol"),
        (dict(max_size=1), "max_size"),
        (dict(threshold=1.5), "threshold"),
    ],
)
def test_bad_arguments_name_the_fix(problem, kwargs, match):
    loss, _, lr = problem
    args = dict(lr=lr) | kwargs
    with pytest.raises(GDFlowsError, match=match):
        principal_scalable(loss, **args)
