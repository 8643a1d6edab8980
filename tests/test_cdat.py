"""CDAT against the closed forms of a quadratic E = theta^T A theta / 2 (H = A, g = A theta)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdflows.errors import GDFlowsError
from gdflows.experiments.optimizers.zoo import methods
from gdflows.experiments.steps import step_rate, step_scan
from gdflows.optim import CDATState, cdat, dal

LAMBDAS = jnp.array([4.0, 1.5, 0.25])
ZOO = dict(ps=[1.0], hg_modes=["hvp"], max_lr=5.0, secant_lr=0.1, rates={"momentum": 0.01, "adam": 0.001})
A = jnp.diag(LAMBDAS)


def quad(theta, a=A):
    return 0.5 * theta @ a @ theta


def one_step(opt, theta, loss=quad, state=None):
    state = opt.init(theta) if state is None else state
    update, state = opt.update(jax.grad(loss)(theta), state, theta, value_fn=loss)
    return update, state


@pytest.mark.parametrize("i", [0, 1, 2])
def test_along_an_eigenvector_sigma2_is_two_over_lambda(i):
    theta = 0.7 * jnp.eye(3)[i]
    update, state = one_step(cdat(sigma=2.0, max_lr=100.0), theta)
    assert float(state.h) == pytest.approx(2 / float(LAMBDAS[i]), rel=1e-14)
    np.testing.assert_allclose(update, -state.h * A @ theta, rtol=1e-14)
    # DAL-1 takes the same step there: |Hg|/|g| = lambda_i
    _, dal_state = one_step(dal(p=1.0, max_lr=100.0), theta)
    assert float(dal_state.h) == pytest.approx(float(state.h), rel=1e-14)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_rate_is_sigma_times_the_quadratic_line_search(sigma):
    theta = jnp.array([0.3, -1.0, 2.0])
    g = A @ theta
    _, state = one_step(cdat(sigma=sigma, max_lr=100.0), theta)
    expected = sigma * (g @ g) / (g @ A @ g)
    assert float(state.h) == pytest.approx(float(expected), rel=1e-14)
    assert float(state.slope) == pytest.approx(float(g @ g), rel=1e-14)
    assert float(state.curvature) == pytest.approx(float(g @ A @ g), rel=1e-14)
    if sigma == 1.0:  # the exact line search: the loss along -g is lowest there
        h = float(state.h)
        along = [float(quad(theta - t * g)) for t in (0.99 * h, h, 1.01 * h)]
        assert along[1] < min(along[0], along[2])


def test_dal_is_at_most_cdat_on_the_edge():
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = jnp.asarray(rng.normal(size=3))
        _, c = one_step(cdat(sigma=2.0, max_lr=1e3), theta)
        _, d = one_step(dal(p=1.0, max_lr=1e3), theta)
        assert float(d.h) < float(c.h)  # strict: a random g is no eigenvector


def test_momentum_base_uses_its_direction():
    beta, theta0 = 0.9, jnp.array([1.0, -0.5, 2.0])
    opt = cdat(optax.trace(decay=beta), sigma=2.0, max_lr=100.0)
    state = opt.init(theta0)
    theta, u_prev = theta0, jnp.zeros(3)
    for _ in range(3):
        g = A @ theta
        u = g + beta * u_prev
        update, state = opt.update(g, state, theta, value_fn=quad)
        h = 2 * (g @ u) / (u @ A @ u)
        assert float(state.h) == pytest.approx(float(min(h, 100.0)), rel=1e-12)
        np.testing.assert_allclose(update, -state.h * u, rtol=1e-12)
        theta, u_prev = theta + update, u


def test_adam_base_uses_its_direction():
    theta = jnp.array([1.0, -0.5, 2.0])
    g = A @ theta
    update, state = one_step(cdat(optax.scale_by_adam(eps=1e-8), sigma=2.0, max_lr=100.0), theta)
    u = g / (jnp.abs(g) + 1e-8)  # first Adam step: m_hat = g, nu_hat = g^2
    assert float(state.h) == pytest.approx(float(2 * (g @ u) / (u @ A @ u)), rel=1e-10)
    np.testing.assert_allclose(update, -state.h * u, rtol=1e-10)


def test_no_minimum_along_u_falls_back_as_documented():
    saddle = jnp.diag(jnp.array([1.0, -2.0]))
    loss = lambda th: 0.5 * th @ saddle @ th  # noqa: E731
    # negative curvature along u = g: the largest allowed step
    update, state = one_step(cdat(max_lr=3.0), jnp.array([0.0, 1.0]), loss)
    assert float(state.curvature) < 0 and float(state.h) == 3.0
    np.testing.assert_allclose(update, -3.0 * jax.grad(loss)(jnp.array([0.0, 1.0])))
    # u pointing uphill (g.u < 0) with positive curvature: no step
    update, state = one_step(cdat(optax.scale(-1.0), max_lr=3.0), jnp.array([1.0, 0.0]), loss)
    assert float(state.slope) < 0 < float(state.curvature)
    assert float(state.h) == 0.0 and not np.any(np.asarray(update))
    # a flat direction: capped at max_lr
    _, state = one_step(
        cdat(max_lr=0.5), jnp.array([1.0, 0.0, 0.0]), lambda th: quad(th, jnp.diag(jnp.array([1e-6, 1, 1])))
    )
    assert float(state.h) == 0.5


def test_finite_difference_is_exact_on_a_quadratic():
    theta = jnp.array([0.3, -1.0, 2.0])
    u_hvp, s_hvp = one_step(cdat(max_lr=100.0), theta)
    u_fd, s_fd = one_step(cdat(max_lr=100.0, hg="fd"), theta)
    assert float(s_fd.h) == pytest.approx(float(s_hvp.h), rel=1e-9)
    np.testing.assert_allclose(u_fd, u_hvp, rtol=1e-9)


def test_moving_average_of_slope_and_curvature():
    opt = cdat(sigma=2.0, max_lr=100.0, ema=0.5)
    theta0 = jnp.array([0.3, -1.0, 2.0])
    update, state = one_step(opt, theta0)
    g0 = A @ theta0
    assert float(state.slope) == pytest.approx(float(g0 @ g0), rel=1e-14)  # started from the first step
    theta1 = theta0 + update
    g1 = A @ theta1
    _, state = one_step(opt, theta1, state=state)
    slope, curv = 0.5 * (g0 @ g0 + g1 @ g1), 0.5 * (g0 @ A @ g0 + g1 @ A @ g1)
    assert float(state.slope) == pytest.approx(float(slope), rel=1e-13)
    assert float(state.h) == pytest.approx(float(2 * slope / curv), rel=1e-13)


def test_pytree_params_and_scan():
    params = {"a": jnp.array([0.3, -1.0]), "b": jnp.array(2.0)}

    def loss(p):
        return quad(jnp.concatenate([p["a"], p["b"][None]]))

    opt = cdat(max_lr=100.0)

    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p, value_fn=loss)
        return (optax.apply_updates(p, u), s), s.h

    (_, state), hs = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=3))(params)
    assert isinstance(state, CDATState) and int(state.count) == 3
    g = A @ jnp.array([0.3, -1.0, 2.0])
    assert float(hs[0]) == pytest.approx(float(2 * (g @ g) / (g @ A @ g)), rel=1e-13)


def test_bad_input_names_the_fix():
    with pytest.raises(GDFlowsError, match="sigma"):
        cdat(sigma=0.0)
    with pytest.raises(GDFlowsError, match="hg must be one of"):
        cdat(hg="secant")
    with pytest.raises(GDFlowsError, match="ema"):
        cdat(ema=1.0)
    opt = cdat()
    with pytest.raises(GDFlowsError, match="value_fn=loss_fn"):
        opt.update(jnp.ones(3), opt.init(jnp.ones(3)), jnp.ones(3))


def test_zoo_offers_cdat_on_the_edge_and_schedule_free():
    zoo = {m.name: m for m in methods(sweep=[0.1, 0.3], **ZOO)}
    assert zoo["cdat"].family == "cdat" and zoo["schedule_free"].lr == 0.3
    theta = jnp.array([0.3, -1.0, 2.0])
    g = A @ theta
    _, state = one_step(zoo["cdat"].make(), theta)
    assert float(state.h) == pytest.approx(float(2 * (g @ g) / (g @ A @ g)), rel=1e-14)
    # schedule-free SGD: its first step from z = y = theta is plain SGD at its rate
    update, _ = one_step(zoo["schedule_free"].make(), theta)
    np.testing.assert_allclose(update, -0.3 * g, rtol=1e-6)


def test_training_chunks_record_the_cdat_rate():
    method = next(m for m in methods(sweep=[0.1], **ZOO) if m.name == "cdat")
    opt = method.make()
    run = step_scan(opt, lambda th, x, y: quad(th), record=lambda s: step_rate(s, method.lr))
    theta = jnp.array([0.3, -1.0, 2.0])
    _, _, _, h = run(theta, opt.init(theta), jnp.zeros((1, 0), jnp.int32), jnp.zeros((1, 1)), jnp.zeros(1))
    g = A @ theta
    assert float(h[0]) == pytest.approx(float(2 * (g @ g) / (g @ A @ g)), rel=1e-14)
