"""Lanczos eigenpairs against numpy's dense eigensolvers on the same Hessian."""

import functools
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from curvature_problems import tanh_mlp
from gdflows.curvature import hessian
from gdflows.curvature.chunked import grad_of
from gdflows.curvature.eigen import eigsh, hessian_eigenpairs
from gdflows.errors import GDFlowsError

lanczos_pairs = functools.partial(hessian_eigenpairs, method="lanczos")  # these problems are below the dense cut-off


@pytest.fixture(scope="module")
def problem():
    loss, theta, _ = tanh_mlp(n=96, din=6, width=12, chunk_size=48)
    return loss, theta, np.linalg.eigh(np.asarray(hessian(loss, theta)))


def test_top_and_bottom_eigenpairs_match_eigh(problem):
    loss, theta, (lam, vecs) = problem
    k = 4
    top = lanczos_pairs(loss, theta, k, which="LA", tol=1e-10)
    bottom = lanczos_pairs(loss, theta, k, which="SA", tol=1e-10)
    np.testing.assert_allclose(top.values, lam[::-1][:k], rtol=1e-10)
    np.testing.assert_allclose(bottom.values, lam[:k], rtol=1e-10, atol=1e-12)
    overlaps = np.abs(np.sum(np.asarray(top.vectors) * vecs[:, ::-1][:, :k].T, axis=1))
    np.testing.assert_allclose(overlaps, 1, atol=1e-7)
    assert bool(top.converged) and int(top.hvps) < theta.shape[0]


def test_residuals_are_the_true_residuals(problem):
    loss, theta, (lam, _) = problem
    pairs = lanczos_pairs(loss, theta, 4, tol=1e-6)  # same compiled solve, looser tol
    H = np.asarray(hessian(loss, theta))
    true = np.linalg.norm(np.asarray(pairs.vectors) @ H - pairs.values[:, None] * pairs.vectors, axis=1)
    np.testing.assert_allclose(pairs.residuals, true, rtol=1e-4, atol=1e-13)
    assert np.all(true <= 1e-6 * lam[-1])


def test_complex_symmetric_hessian_at_a_complex_state(problem):
    loss, theta, _ = problem
    z = theta + 1e-2j * jnp.asarray(np.random.default_rng(3).normal(size=theta.shape))
    H = np.asarray(hessian(loss, z))
    assert np.abs(H - H.T).max() < 1e-12 and np.abs(H - H.conj().T).max() > 1e-6
    ref = np.linalg.eigvals(H)
    ref = ref[np.argsort(-ref.real)]
    pairs = lanczos_pairs(loss, z, 4, tol=1e-10)
    np.testing.assert_allclose(pairs.values, ref[:4], rtol=1e-9)
    U = np.asarray(pairs.vectors)
    np.testing.assert_allclose(U @ U.T, np.eye(4), atol=1e-9)  # bilinear, not Hermitian, orthonormality


def test_warm_start_after_a_gd_step_needs_fewer_hvps(problem):
    loss, theta, _ = problem
    cold = lanczos_pairs(loss, theta, 4, tol=1e-8)
    nxt = theta - 0.1 * grad_of(loss)(theta)
    ref = np.linalg.eigvalsh(np.asarray(hessian(loss, nxt)))[::-1][:4]
    warm = lanczos_pairs(loss, nxt, 4, tol=1e-8, warm_start=cold)
    again = lanczos_pairs(loss, nxt, 4, tol=1e-8)
    np.testing.assert_allclose(warm.values, ref, rtol=1e-10)
    assert int(warm.hvps) < int(again.hvps)  # a modest saving; see benchmarks/pf_scale.py


def test_float32():
    loss32, theta32, _ = tanh_mlp(n=96, din=6, width=12, chunk_size=48, dtype="float32")
    lam = np.linalg.eigvalsh(np.asarray(hessian(loss32, theta32), np.float64))
    pairs = lanczos_pairs(loss32, theta32, 4, tol=1e-4)
    assert pairs.values.dtype == jnp.float32
    np.testing.assert_allclose(pairs.values, lam[::-1][:4], rtol=1e-4)


def test_unconverged_run_warns(problem):
    loss, theta, _ = problem
    with pytest.warns(UserWarning, match="raise max_size"):
        lanczos_pairs(loss, theta, 3, tol=1e-12, max_size=4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be"),
        (dict(k=10**6), "k must be"),
        (dict(k=2, which="LM"), "which"),
        (dict(k=2, tol=0.0), "tol must be > 0"),
        (dict(k=2, max_size=10**6), "exceeds the dimension"),
        (dict(k=2, warm_start=jnp.ones((2, 3))), "warm_start"),
    ],
)
def test_bad_arguments_name_the_fix(problem, kwargs, match):
    loss, theta, _ = problem
    with warnings.catch_warnings(), pytest.raises(GDFlowsError, match=match):
        lanczos_pairs(loss, theta, **kwargs)


def test_float32_tolerance_below_epsilon_is_refused():
    loss32, theta32, _ = tanh_mlp(dtype="float32")
    with pytest.raises(GDFlowsError, match="machine epsilon"):
        lanczos_pairs(loss32, theta32, 2, tol=1e-8)


def test_block_start_on_an_invariant_subspace_stops_after_one_block():
    """A start block spanning eigenvectors is exact after b HVPs (and survives the breakdown)."""
    lam = jnp.arange(1.0, 31.0)
    eye = np.eye(30)
    block = jnp.asarray(eye[[29, 27, 28]] + eye[[28, 29, 27]])  # mixes the top 3 eigenvectors
    pairs = eigsh(lambda v: lam * v, block, 3, which="LA", tol=1e-12, max_size=30)
    assert int(pairs.hvps) == 3 and bool(pairs.converged)
    np.testing.assert_allclose(pairs.values, [30.0, 29.0, 28.0], rtol=1e-14)


def test_auto_is_dense_up_to_the_cut_off_and_lanczos_above(problem):
    # the cut-off: dense up to D = 256 parameters (README, docs/theory.md)
    loss, theta, (lam, _) = problem
    assert theta.shape[0] <= 256
    auto = hessian_eigenpairs(loss, theta, 3)
    assert int(auto.hvps) == theta.shape[0]  # the dense Hessian: D HVPs
    np.testing.assert_allclose(auto.values, lam[::-1][:3], rtol=1e-12)
    big_loss, big_theta, _ = tanh_mlp(n=64, din=30, width=8, chunk_size=32)
    assert big_theta.shape[0] > 256
    big = hessian_eigenpairs(big_loss, big_theta, 2, tol=1e-10)
    assert int(big.hvps) < big_theta.shape[0]
    ref = np.linalg.eigvalsh(np.asarray(hessian(big_loss, big_theta)))[::-1][:2]
    np.testing.assert_allclose(big.values, ref, rtol=1e-9)
