"""The central flow's semidefinite complementarity problem: closed forms, basis invariance, KKT residuals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.flows._sdcp import psd_part, smat, solve_sdcp, svec

TOL = 1e-11
solve = jax.jit(solve_sdcp, static_argnums=(3, 4))


def _scale(C):
    return float(np.linalg.norm(C))


def _solve(C, Q, S0=None):
    k = C.shape[0]
    S0 = np.zeros((k, k)) if S0 is None else S0
    return solve(jnp.asarray(C), jnp.asarray(Q), jnp.asarray(S0), TOL, 20_000, _scale(C))


def _kkt(C, Q, S):
    """(min eig S, min eig A(S), <S, A(S)>) with A(S) = C + Q(S)."""
    A = C + np.asarray(smat(jnp.asarray(Q) @ svec(jnp.asarray(S)), C.shape[0]))
    return np.linalg.eigvalsh(S)[0], np.linalg.eigvalsh(A)[0], float(np.sum(S * A))


@pytest.mark.parametrize(("grad_lam", "g"), [([3.0, -1.0], [0.5, 2.0]), ([1.0, 1.0], [1.0, 1.0])])
def test_one_direction_is_the_closed_form(grad_lam, g):
    """k = 1: A = grad lam . g + sigma^2 |grad lam|^2 / 2, so sigma^2 = max(0, 2 <-g, grad lam> / |grad lam|^2)."""
    grad_lam, g = np.array(grad_lam), np.array(g)
    C, Q = np.array([[grad_lam @ g]]), np.array([[0.5 * grad_lam @ grad_lam]])
    expected = max(0.0, 2 * (-g @ grad_lam) / (grad_lam @ grad_lam))
    result = _solve(C, Q)
    assert float(smat(result.s, 1)[0, 0]) == pytest.approx(expected, abs=1e-12)
    assert bool(result.converged)


def test_decoupled_directions_solve_one_by_one():
    """Orthogonal curvature gradients make Q diagonal: S_jj = max(0, -C_jj / Q_jj), S_jl = 0."""
    rng = np.random.default_rng(0)
    k = 4
    m = k * (k + 1) // 2
    J = np.linalg.qr(rng.standard_normal((20, m)))[0].T * rng.uniform(0.5, 3.0, (m, 1))
    Q = 0.5 * J @ J.T
    c_diag = np.array([-2.0, 1.5, -0.3, 0.7])
    S = np.asarray(smat(_solve(np.diag(c_diag), Q).s, k))
    i, j = np.triu_indices(k)
    q_diag = np.diag(Q)[i == j]
    np.testing.assert_allclose(np.diag(S), np.maximum(0, -c_diag / q_diag), atol=1e-10)
    np.testing.assert_allclose(S - np.diag(np.diag(S)), 0, atol=1e-10)


def test_solution_follows_a_rotation_of_the_basis():
    """Sigma = U S U^T does not depend on the basis of the subspace: rotating the problem rotates S.

    The solution of the rotated problem is a full (non-diagonal) matrix, which a covariance
    restricted to be diagonal in the basis cannot represent.
    """
    rng = np.random.default_rng(1)
    k = 3
    m = k * (k + 1) // 2
    J = rng.standard_normal((m, 30))
    Q = 0.5 * J @ J.T
    C = np.diag([-1.0, -0.5, 2.0])
    S = np.asarray(smat(_solve(C, Q).s, k))
    R = np.linalg.qr(rng.standard_normal((k, k)))[0]
    basis = np.stack([np.asarray(svec(jnp.asarray(R @ smat(jnp.asarray(e), k) @ R.T))) for e in np.eye(m)], axis=1)
    Q_rot = basis @ Q @ basis.T  # Q in the rotated svec coordinates (basis is orthogonal)
    S_rot = np.asarray(smat(_solve(R @ C @ R.T, Q_rot).s, k))
    np.testing.assert_allclose(S_rot, R @ S @ R.T, atol=1e-9)
    assert np.max(np.abs(S_rot - np.diag(np.diag(S_rot)))) > 1e-2


@pytest.mark.parametrize("seed", range(6))
def test_random_problems_meet_the_complementarity_conditions(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    m = k * (k + 1) // 2
    J = rng.standard_normal((m, 25)) * rng.uniform(0.2, 3.0, (m, 1))
    Q = 0.5 * J @ J.T
    C = rng.standard_normal((k, k))
    C = C + C.T
    result = _solve(C, Q)
    S = np.asarray(smat(result.s, k))
    s_min, a_min, gap = _kkt(C, Q, S)
    scale = np.linalg.norm(C)
    assert bool(result.converged) and float(result.residual) <= TOL
    assert s_min >= -1e-12 * scale and a_min >= -1e-8 * scale and abs(gap) <= 1e-8 * scale


def test_a_warm_start_at_the_solution_needs_no_iteration_and_a_tiny_budget_reports_failure():
    rng = np.random.default_rng(7)
    J = rng.standard_normal((6, 12))
    Q, C = 0.5 * J @ J.T, -np.eye(3) + 0.3 * np.ones((3, 3))
    S = np.asarray(smat(_solve(C, Q).s, 3))
    warm = _solve(C, Q, S)
    assert int(warm.iterations) <= 1
    short = solve(jnp.asarray(C), jnp.asarray(Q), jnp.zeros((3, 3)), 1e-14, 2, _scale(C))
    assert not bool(short.converged) and float(short.residual) > 1e-14


def test_psd_part_is_the_nearest_psd_matrix():
    A = np.array([[1.0, 2.0], [2.0, -3.0]])
    w, V = np.linalg.eigh(A)
    np.testing.assert_allclose(psd_part(jnp.asarray(A)), (V * np.maximum(w, 0)) @ V.T, atol=1e-14)


def test_without_third_derivatives_zero_solves_a_psd_gap_and_an_indefinite_one_is_reported():
    """Q = 0 (a quadratic loss): S = 0 is the solution iff C >= 0; otherwise no S exists."""
    Q = np.zeros((3, 3))
    fine = _solve(np.diag([2.0, 0.5]), Q)
    assert bool(fine.converged) and float(fine.residual) == 0 and np.all(np.asarray(fine.s) == 0)
    bad = solve(jnp.asarray(np.diag([2.0, -0.5])), jnp.asarray(Q), jnp.zeros((2, 2)), TOL, 50, 1.0)
    assert not bool(bad.converged) and not float(bad.residual) <= TOL  # unbounded below: no S, reported
