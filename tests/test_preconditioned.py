"""Preconditioned sharpness, the optimizers' thresholds, and the PF of preconditioned GD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdflows
from gdflows.curvature import hessian
from gdflows.curvature.preconditioned import (
    adam_preconditioner,
    preconditioned_eigenpairs,
    preconditioned_loss,
    rmsprop_preconditioner,
)
from gdflows.errors import GDFlowsError
from gdflows.flows import principal
from gdflows.params import ravel
from gdflows.stability.thresholds import stability_threshold


def _net():
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    x, y = jax.random.normal(keys[0], (20, 3)), jax.random.normal(keys[1], (20, 2))
    params = {"w": jax.random.normal(keys[2], (3, 5)), "v": jnp.full((5, 2), 0.3)}

    def loss(p):
        return 0.5 * jnp.mean((jnp.tanh(x @ p["w"]) @ p["v"] - y) ** 2)

    return params, loss


def _dense_preconditioned(loss, params, P):
    theta, unravel = ravel(params)
    d = 1 / np.sqrt(np.asarray(ravel(P)[0]))
    H = np.asarray(hessian(lambda t: loss(unravel(t)), theta))
    return np.linalg.eigvalsh(d[:, None] * H * d[None, :])[::-1]


@pytest.mark.parametrize("which,method", [("adam", "lanczos"), ("rmsprop", "lanczos"), ("adam", "auto")])
def test_preconditioned_eigenvalues_equal_a_dense_p_half_h_p_half(which, method):
    params, loss = _net()
    opt = optax.adam(1e-2) if which == "adam" else optax.rmsprop(1e-2)
    state = opt.init(params)
    for _ in range(3):
        updates, state = opt.update(jax.grad(loss)(params), state)
        params = optax.apply_updates(params, updates)
    P = adam_preconditioner(state) if which == "adam" else rmsprop_preconditioner(state)
    dense = _dense_preconditioned(loss, params, P)
    found = preconditioned_eigenpairs(loss, params, P, k=3, tol=1e-10, method=method)
    if method == "auto":  # D = 25: dense, as hessian_eigenpairs (a dense solve reports D products)
        assert int(found.hvps) == sum(x.size for x in jax.tree_util.tree_leaves(params))
    np.testing.assert_allclose(found.values, dense[:3], rtol=1e-8)
    assert bool(found.converged)


def test_a_new_preconditioner_reuses_the_compiled_solve():
    params, loss = _net()
    traces = []

    def counted(p):
        if isinstance(jax.tree_util.tree_leaves(p)[0], jax.core.Tracer):  # JAX tracing, not an eager check
            traces.append(1)
        return loss(p)

    P = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 2.0), params)
    first = preconditioned_eigenpairs(counted, params, P, k=1, tol=1e-10, method="lanczos")
    traced = len(traces)
    halved = jax.tree_util.tree_map(lambda x: x / 2, P)
    second = preconditioned_eigenpairs(counted, params, halved, k=1, tol=1e-10, method="lanczos")
    assert traced > 0 and len(traces) == traced  # a monitor calling this every N steps compiles once
    assert float(second.values[0]) == pytest.approx(2 * float(first.values[0]), rel=1e-8)  # P/2: twice the curvature


def test_adams_preconditioner_is_optaxs_own_scaling():
    params, loss = _net()
    opt = optax.scale_by_adam(b2=0.99, eps=1e-3)
    state = opt.init(params)
    g = jax.grad(loss)(params)
    _, state = opt.update(g, state)
    P = adam_preconditioner(state, b2=0.99, eps=1e-3)
    # after one step m_hat = g and nu_hat = g^2, so optax's update is g / (|g| + eps) = g / P
    updates, _ = optax.scale_by_adam(b2=0.99, eps=1e-3, b1=0.0).update(g, optax.scale_by_adam(b1=0.0).init(params))
    for key in params:
        np.testing.assert_allclose(updates[key], g[key] / P[key], rtol=1e-10)


def test_thresholds_equal_their_closed_forms():
    assert stability_threshold("gd", 0.1) == pytest.approx(20.0)
    assert stability_threshold("rmsprop", 0.1) == pytest.approx(20.0)
    assert stability_threshold("momentum", 0.1, momentum=0.9) == pytest.approx(38.0)
    assert stability_threshold("nesterov", 0.1, momentum=0.9) == pytest.approx(3.8 / 2.8 / 0.1)
    assert stability_threshold("adam", 0.1, b1=0.9) == pytest.approx(380.0)


def _warm(state, nu):
    """A state whose second moment is ``nu`` after many steps (bias corrections spent): P frozen at sqrt(nu)."""

    def fix(node):
        if isinstance(node, optax.ScaleByAdamState):
            return node._replace(count=jnp.asarray(10**6, node.count.dtype), nu=jnp.full_like(node.nu, nu))
        if isinstance(node, optax.ScaleByRmsState):
            return node._replace(nu=jnp.full_like(node.nu, nu))
        return node

    kinds = (optax.ScaleByAdamState, optax.ScaleByRmsState)
    return jax.tree_util.tree_map(fix, state, is_leaf=lambda n: isinstance(n, kinds))


OPTIMIZERS = {
    # second moments frozen at nu = 4 (decay 1 - 1e-5: 0.3% drift of P over the run), so P = 2 (+ eps)
    "adam": (lambda lr: optax.adam(lr, b1=0.9, b2=1 - 1e-5), {"b1": 0.9}, adam_preconditioner),
    "rmsprop": (lambda lr: optax.rmsprop(lr, decay=1 - 1e-5), {}, rmsprop_preconditioner),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9), {"momentum": 0.9}, None),
    "nesterov": (lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True), {"momentum": 0.9}, None),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_flips_from_stable_to_unstable_at_its_threshold(name):
    """lambda(P^-1/2 H P^-1/2) at 0.95 and 1.05 times the optimizer's threshold, on E = c x^2 / 2."""
    make, kwargs, read_p = OPTIMIZERS[name]
    lr = 0.01
    edge = stability_threshold(name, lr, **kwargs)
    x0 = jnp.asarray([1e-9])  # gradients far below sqrt(nu): P stays frozen while |x| < 1e-3
    state0 = _warm(make(lr).init(x0), 4.0)
    P = 1.0 if read_p is None else float(read_p(state0, **({"b2": 1 - 1e-5} if name == "adam" else {}))[0])

    def grows(curvature):
        """Whether |x| passes 1000 |x_0| within 150 steps (a stable run's transient stays far below)."""
        opt, x, state, peak = make(lr), x0, state0, 0.0
        for _ in range(150):
            updates, state = opt.update(curvature * x, state, x)
            x = optax.apply_updates(x, updates)
            peak = max(peak, float(jnp.abs(x[0])))
        return peak > 1e3 * float(x0[0])

    assert not grows(0.95 * edge * P) and grows(1.05 * edge * P)


def test_the_pf_of_preconditioned_gd_follows_it_exactly_on_a_quadratic():
    """Every regime at once: h lambda~ = 0.4, 1.5 (oscillating) and 2.2 (diverging) along three directions."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    p = np.array([0.5, 2.0, 4.0])
    lam_tilde = np.array([0.4, 1.5, 2.2])
    s = np.sqrt(p)
    H = s[:, None] * (Q @ np.diag(lam_tilde) @ Q.T) * s[None, :]  # so that P^-1/2 H P^-1/2 = Q diag Q^T
    b = rng.normal(size=3)

    def loss(t):
        return 0.5 * t @ jnp.asarray(H) @ t - jnp.asarray(b) @ t

    theta0, h, steps = jnp.asarray(rng.normal(size=3)), 1.0, 6
    thetas = [np.asarray(theta0)]
    for _ in range(steps):  # preconditioned GD, P frozen
        thetas.append(thetas[-1] - h * (H @ thetas[-1] - b) / p)
    loss_phi, phi0, to_theta = preconditioned_loss(loss, theta0, jnp.asarray(p))
    sol = gdflows.integrate(principal(loss_phi, h, method="dense"), phi0, steps=steps, rtol=1e-12, atol=1e-14)
    pf = np.asarray(jax.vmap(to_theta)(jnp.asarray(sol.thetas)))
    np.testing.assert_allclose(pf.real, np.array(thetas), atol=1e-9)
    assert np.abs(pf.imag).max() < 1e-9  # GD is real; the flow passes through GD's iterates


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: stability_threshold("lion", 0.1), "optimizer must be one of gd, momentum, nesterov, rmsprop, adam"),
        (lambda: stability_threshold("momentum", 0.1, momentum=1.0), "momentum must be in"),
        (lambda: adam_preconditioner(optax.sgd(0.1).init(jnp.zeros(2))), "expected one scale_by_adam state"),
        (lambda: adam_preconditioner(optax.adam(0.1).init(jnp.zeros(2))), "taken no step"),
        (lambda: preconditioned_loss(lambda t: t @ t, jnp.ones(2), jnp.asarray([1.0, 0.0])), "positive"),
        (lambda: preconditioned_loss(lambda t: t @ t, jnp.ones(2), jnp.ones(3)), "3 entries"),
    ],
)
def test_bad_input_is_refused_with_the_fix(call, match):
    with pytest.raises(GDFlowsError, match=match):
        call()


def _heavy_ball(h, beta, steps, lam=1.0, x0=1.0):
    """optax's SGD with momentum on E = lam x^2 / 2: the iterates x_0..x_steps."""
    opt = optax.sgd(h, momentum=beta)
    x, state, xs = jnp.asarray(x0), opt.init(jnp.asarray(x0)), [x0]
    for _ in range(steps):
        updates, state = opt.update(lam * x, state)
        x = optax.apply_updates(x, updates)
        xs.append(float(x))
    return np.asarray(xs)


def test_what_no_flow_of_theta_can_model_momentum():
    """docs/theory.md, section 11: heavy ball (beta = 0.9) beside GD's PF at the effective rate h / (1 - beta),
    which on this quadratic is exactly GD's iterates (1 - h_eff lam)^n at t = n h_eff."""
    quadratic = lambda x: 0.5 * jnp.sum(x**2)  # noqa: E731
    at_effective_rate = lambda h: np.asarray(gdflows.gd(quadratic, jnp.ones(1), h / (1 - 0.9), 60))[:, 0]  # noqa: E731
    xs = _heavy_ball(0.05, 0.9, 60)  # h lam = 0.05: complex modes, |z| = sqrt(0.9)
    pf = at_effective_rate(0.05)  # h_eff lam = 0.5
    assert np.flatnonzero(np.diff(np.sign(xs)))[0] + 1 == 8  # heavy ball crosses the minimum at step 8 ...
    assert np.all(pf > 0)  # ... which no real 1-D flow of theta started beside it can
    assert np.abs(pf - xs).max() == pytest.approx(0.608, abs=1e-3)
    stable = _heavy_ball(0.5, 0.9, 60)  # h lam = 0.5 < 2 + 2 beta = 3.8: stable ...
    assert abs(stable[-1]) < 0.1 and abs(at_effective_rate(0.5)[-1]) > 1e30  # ... where GD at h_eff = 5 diverges
