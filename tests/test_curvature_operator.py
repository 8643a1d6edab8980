"""The Hessian operator at a fixed theta: linearised once within the memory budget, recomputed beyond it."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature import chunked_loss, grad_of, hessian_eigenpairs, hvp_of
from gdflows.curvature.operator import hessian_operator, memory_budget, residual_bytes
from gdflows.errors import GDFlowsError

jax.config.update("jax_enable_x64", True)


def _problem(seed=0, n=50, d_in=6, width=5):
    rng = np.random.default_rng(seed)
    x, y = jnp.asarray(rng.normal(size=(n, d_in))), jnp.asarray(rng.normal(size=n))
    D = d_in * width + width

    def example(theta, xy):
        A, b = theta[: d_in * width].reshape(d_in, width), theta[d_in * width :]
        return (jnp.sum(jnp.tanh(xy[0] @ A) * b) - xy[1]) ** 2

    theta = jnp.asarray(rng.normal(size=D)) * 0.5
    return chunked_loss(example, (x, y), 16), theta, rng


def _dense_hessian(loss, theta):
    return jax.hessian(lambda t: loss(t))(theta)


def test_the_linearised_operator_is_the_hessian_for_real_complex_and_chunked_inputs():
    loss, theta, rng = _problem()
    H = np.asarray(_dense_hessian(loss, theta))  # independent: jax.hessian of the (rematerialised) loss
    op = hessian_operator(loss, theta)
    assert op.linearized and op.residual_bytes > 0
    v = rng.normal(size=theta.size)
    np.testing.assert_allclose(op.matvec(jnp.asarray(v)), H @ v, rtol=1e-12, atol=1e-12 * np.abs(H).max())
    w = v + 1j * rng.normal(size=theta.size)  # a complex vector at a real theta: H acts on both parts
    np.testing.assert_allclose(op.matvec(jnp.asarray(w)), H @ w, rtol=1e-12, atol=1e-12 * np.abs(H).max())
    at = theta.astype(jnp.complex128) + 0.01j  # complex theta: the holomorphic Hessian, as hvp_of computes it
    got = hessian_operator(loss, at).matvec(jnp.asarray(w))
    np.testing.assert_allclose(got, hvp_of(loss)(at, jnp.asarray(w)), rtol=1e-12, atol=1e-13)


def test_the_budget_decides_between_linearising_and_recomputing():
    loss, theta, rng = _problem(1)
    need = residual_bytes(loss, theta)
    # the shapes-only count equals the bytes jax.linearize actually keeps
    kept = jax.tree_util.tree_leaves(jax.linearize(grad_of(loss), theta)[1])
    assert need == sum(a.nbytes for a in kept) > 0
    v = jnp.asarray(rng.normal(size=theta.size))
    at_limit, below = hessian_operator(loss, theta, need), hessian_operator(loss, theta, need - 1)
    assert at_limit.linearized and not below.linearized
    assert not hessian_operator(loss, theta, 0).linearized
    np.testing.assert_allclose(at_limit.matvec(v), below.matvec(v), rtol=1e-12)
    g = jax.grad(lambda t: loss(t))(theta)  # reverse mode through the loss's own chunked sum
    for op in (at_limit, below):  # either way the operator carries g, the linearisation's primal or a gradient
        np.testing.assert_allclose(op.gradient, g, rtol=1e-12, atol=1e-14)


def test_eigenpairs_report_which_operator_they_used_and_agree():
    loss, theta, _ = _problem(2)
    kept = hessian_eigenpairs(loss, theta, 3, method="lanczos", tol=1e-10)
    recomputed = hessian_eigenpairs(loss, theta, 3, method="lanczos", tol=1e-10, budget=0)
    assert kept.linearized and not recomputed.linearized
    truth = np.sort(np.linalg.eigvalsh(np.asarray(_dense_hessian(loss, theta))))[::-1][:3]
    np.testing.assert_allclose(kept.values, truth, rtol=1e-9)
    np.testing.assert_allclose(recomputed.values, truth, rtol=1e-9)
    dense = hessian_eigenpairs(loss, theta, 3, method="dense", budget=0)
    assert not dense.linearized
    np.testing.assert_allclose(dense.values, truth, rtol=1e-10)
    with pytest.raises(GDFlowsError, match="budget must be an integer number of bytes >= 0"):
        hessian_eigenpairs(loss, theta, 1, budget=-1)


def test_the_default_budget_is_a_quarter_of_the_machine():
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    stats = jax.local_devices()[0].memory_stats() or {}
    assert memory_budget() == int(0.25 * stats.get("bytes_limit", physical))
