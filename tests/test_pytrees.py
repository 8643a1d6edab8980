"""Parameters as pytrees (a plain dict, an equinox MLP) in float32 and float64 through every entry point
that takes parameters: gd, integrate with every flow, diagnose, hessian_eigenpairs and DAL. Each result is
checked against the same computation on the flat vector (jax.flatten_util, independent of gdflows.params)
or against a dense Hessian."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import gdflows
from gdflows.curvature import hessian_eigenpairs
from gdflows.errors import GDFlowsError
from gdflows.flows import central, igr, ngf, principal, third_order
from gdflows.optim import dal, dal_momentum, dal_rate
from gdflows.status import Status


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 2))


X, Y = _data()  # fixed data: drawn from its own generator, whatever ran before
RTOL = {jnp.float32: 2e-4, jnp.float64: 1e-9}


def _dict_problem(dtype):
    w = np.random.default_rng(1).normal(size=(3, 2)) * 0.5  # the same start at every call
    params = {"w": jnp.asarray(w, dtype), "b": jnp.asarray([0.1, -0.2], dtype)}
    x, y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)

    def loss(p):
        return jnp.mean((jnp.tanh(x @ p["w"] + p["b"]) - y) ** 2)

    return loss, params


def _equinox_problem(dtype):
    model = eqx.nn.MLP(3, 2, width_size=4, depth=1, activation=jnp.tanh, key=jax.random.PRNGKey(1))
    model = jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    x, y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)

    def loss(p):
        return jnp.mean((jax.vmap(eqx.combine(p, static))(x) - y) ** 2)

    return loss, params


PROBLEMS = {"dict": _dict_problem, "equinox": _equinox_problem}
# Each entry point sees both pytrees and both dtypes; the full cross product would only repeat compilations.
CASES = [("dict", jnp.float32), ("equinox", jnp.float64)]
OTHER_CASES = [("dict", jnp.float64), ("equinox", jnp.float32)]
H = 0.5  # h a in [0.1, 1.25] on the quadratic below: GD oscillates along the top directions, the PF turns complex


def _flat(loss, params):
    theta, unravel = ravel_pytree(params)
    return (lambda th: loss(unravel(th))), theta


def _rows(tree):
    """A pytree with a leading axis as rows (n, D), in tree_flatten order."""
    leaves = jax.tree_util.tree_leaves(tree)
    return np.concatenate([np.asarray(leaf).reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def _dense(flat_loss, theta):
    lam, U = np.linalg.eigh(np.asarray(jax.jit(jax.hessian(flat_loss))(theta), dtype=np.float64))
    return lam[::-1], U[:, ::-1]


def _quadratic(kind, dtype):
    """E = 1/2 sum_i a_i p_i^2 over the problem's parameter pytree, a_i in [0.2, 2.5]: every flow has a closed form."""
    _, params = PROBLEMS[kind](dtype)
    theta, unravel = ravel_pytree(params)
    a = np.linspace(0.2, 2.5, theta.size)
    coef = jax.tree_util.tree_leaves(unravel(jnp.asarray(a, dtype)))

    def loss(p):
        return 0.5 * sum(jnp.sum(c * x**2) for c, x in zip(coef, jax.tree_util.tree_leaves(p)))

    return loss, params, a, np.asarray(theta, np.float64)


@pytest.mark.parametrize("kind, dtype", CASES + OTHER_CASES)
def test_gd_keeps_the_structure_and_dtype(kind, dtype):
    loss, params, a, theta = _quadratic(kind, dtype)
    thetas = gdflows.gd(loss, params, H, 3)
    assert jax.tree_util.tree_structure(thetas) == jax.tree_util.tree_structure(params)
    assert all(leaf.dtype == dtype and leaf.shape[0] == 4 for leaf in jax.tree_util.tree_leaves(thetas))
    exact = (1 - H * a)[None] ** np.arange(4)[:, None] * theta
    np.testing.assert_allclose(_rows(thetas), exact, rtol=RTOL[dtype], atol=1e-7)


@pytest.mark.parametrize("kind, dtype", CASES)
def test_ngf_and_pf_of_a_pytree_follow_their_closed_forms(kind, dtype):
    loss, params, a, theta = _quadratic(kind, dtype)
    rtol = None if dtype == jnp.float32 else 1e-7  # Tsit5 in both dtypes: a small program to compile
    tol = 1e-4 if dtype == jnp.float32 else 1e-6
    ngf_sol = gdflows.integrate(ngf(loss), params, H, 2, rtol=rtol)
    pf_sol = gdflows.integrate(principal(loss, H), params, steps=2, rtol=rtol)
    for sol in (ngf_sol, pf_sol):
        assert sol.status is Status.OK
        assert jax.tree_util.tree_structure(sol.thetas) == jax.tree_util.tree_structure(params)
    t = np.arange(3)[:, None] * H
    np.testing.assert_allclose(_rows(ngf_sol.thetas), np.exp(-a * t) * theta, rtol=tol, atol=tol * 1e-2)
    assert all(np.iscomplexobj(x) for x in jax.tree_util.tree_leaves(pf_sol.thetas))  # the PF's state
    gd_rows = (1 - H * a)[None] ** np.arange(3)[:, None] * theta  # the PF is GD at t = n h on a quadratic
    np.testing.assert_allclose(_rows(pf_sol.thetas), gd_rows, rtol=tol, atol=tol * 1e-2)


def test_igr_third_order_and_central_flows_of_a_dict_follow_their_closed_forms():
    loss, params, a, theta = _quadratic("dict", jnp.float64)
    rates = {  # along coordinate i every flow is theta_i(t) = exp(-rate_i t) theta_i(0) on this quadratic
        "igr": (igr(loss, H), a + H * a**2 / 2),
        "third_order": (third_order(loss, H), a + H * a**2 / 2 + H**2 * a**3 / 3),
        "central": (central(loss, H), a),  # all a_i < 2/h and no third derivative: the central flow is the NGF
    }
    for name, (flow, rate) in rates.items():
        sol = gdflows.integrate(flow, params, steps=2, rtol=1e-7)
        assert sol.status is Status.OK, name
        exact = np.exp(-rate * np.arange(3)[:, None] * H) * theta
        np.testing.assert_allclose(_rows(sol.thetas), exact, rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("kind, dtype", CASES)
def test_eigenpairs_and_diagnosis_of_a_pytree_match_the_dense_hessian(kind, dtype):
    loss, params = PROBLEMS[kind](dtype)
    flat_loss, theta = _flat(loss, params)
    lam, U = _dense(flat_loss, theta)
    tol = None if dtype == jnp.float32 else 1e-10  # None: the dtype's own default (1.2e-5 in float32)
    pairs = hessian_eigenpairs(loss, params, 2, tol=tol)
    assert all(leaf.shape[0] == 2 for leaf in jax.tree_util.tree_leaves(pairs.vectors))
    np.testing.assert_allclose(pairs.values, lam[:2], rtol=50 * RTOL[dtype], atol=1e-5 * (dtype == jnp.float32))
    overlap = np.abs(_rows(pairs.vectors) @ U[:, :2])
    np.testing.assert_allclose(overlap, np.eye(2), atol=1e-3 if dtype == jnp.float32 else 1e-7)
    again = hessian_eigenpairs(loss, params, 2, tol=tol, warm_start=pairs.vectors)  # a pytree warm start
    np.testing.assert_allclose(again.values, pairs.values, rtol=50 * RTOL[dtype])

    lr = 1.5 / lam[0]
    d = gdflows.diagnose(loss, params, lr, 2, tol=tol)
    g = np.asarray(jax.jit(jax.grad(flat_loss))(theta), dtype=np.float64)
    sc = np.asarray(gdflows.stability_coefficients(jnp.asarray(lam), lr))
    np.testing.assert_allclose(d.eigenvalues, lam[:2], rtol=50 * RTOL[dtype], atol=1e-5 * (dtype == jnp.float32))
    np.testing.assert_allclose(d.energy_rate, np.sum(sc * (U.T @ g) ** 2), rtol=100 * RTOL[dtype])
    assert d.pf_converged and d.eig_converged
    assert jax.tree_util.tree_structure(d.vectors) == jax.tree_util.tree_structure(params)


def test_float32_defaults_follow_the_dtype_and_a_float64_tolerance_is_refused_with_the_fix():
    loss, params = _dict_problem(jnp.float32)
    flat_loss, theta = _flat(loss, params)
    lam, U = _dense(flat_loss, theta)
    pairs = hessian_eigenpairs(loss, params, 2, method="lanczos")  # no tol: 1.2e-5, what float32 resolves
    assert pairs.converged
    np.testing.assert_allclose(pairs.values, lam[:2], rtol=1e-4)
    warm = np.asarray(_rows(pairs.vectors), np.float64)  # e.g. eigenvectors a caller rescaled in numpy
    again = hessian_eigenpairs(flat_loss, theta, 2, method="lanczos", warm_start=warm)
    assert again.converged and again.vectors.dtype == jnp.float32
    np.testing.assert_allclose(again.values, lam[:2], rtol=1e-4)
    field, info = principal(flat_loss, 1.5 / lam[0], method="lanczos").evaluate(theta)
    dense_field, _ = principal(flat_loss, 1.5 / lam[0], method="dense").evaluate(theta)
    assert info.converged and field.dtype == jnp.complex64  # h lambda_0 = 1.5 > 1: a complex field
    np.testing.assert_allclose(field, dense_field, rtol=1e-3, atol=1e-5)
    with pytest.raises(GDFlowsError, match=r"pass a larger tol \(default for float32"):
        hessian_eigenpairs(loss, params, 2, tol=1e-10, method="lanczos")


@pytest.mark.parametrize("kind, dtype", OTHER_CASES)
def test_dal_on_a_pytree_takes_the_closed_form_rate_and_dal_rate_reads_it(kind, dtype):
    loss, params = PROBLEMS[kind](dtype)
    flat_loss, theta = _flat(loss, params)
    g = np.asarray(jax.jit(jax.grad(flat_loss))(theta), dtype=np.float64)
    hess = np.asarray(jax.jit(jax.hessian(flat_loss))(theta), dtype=np.float64)
    h = min(2 * np.linalg.norm(g) / np.linalg.norm(hess @ g), 5.0)
    grads = jax.jit(jax.grad(loss))(params)
    for opt in (dal(), optax.named_chain(("scale", optax.scale(1.0)), ("dal", dal()))):
        state = opt.init(params)
        assert float(dal_rate(state)) == 0.0
        updates, state = jax.jit(lambda gr, st, p, opt=opt: opt.update(gr, st, p, value_fn=loss))(grads, state, params)
        assert float(dal_rate(state)) == pytest.approx(h, rel=100 * RTOL[dtype])
        assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(params)
        np.testing.assert_allclose(ravel_pytree(updates)[0], -h * g, rtol=100 * RTOL[dtype], atol=1e-7)
    step = jax.jit(lambda s: dal_rate(dal_momentum().update(grads, s, params, value_fn=loss)[1]))
    assert np.isfinite(float(step(dal_momentum().init(params))))  # traceable, inside a jitted step


def test_dal_rate_refuses_a_state_without_dal():
    with pytest.raises(GDFlowsError, match="no DAL state"):
        dal_rate(optax.sgd(0.1).init({"w": jnp.zeros(2)}))
    with pytest.raises(GDFlowsError, match="2 DAL states"):
        dal_rate(optax.chain(dal(), dal()).init({"w": jnp.zeros(2)}))
