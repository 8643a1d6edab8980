import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdflows.errors import GDFlowsError
from gdflows.optim.dal import dal, dal_adam, dal_momentum

H = np.diag([2.0, 0.02])
THETA0 = jnp.array([-0.35, -0.2])


def energy(theta):
    return 0.5 * theta @ jnp.asarray(H) @ theta


def one_step(opt, theta=THETA0, loss=energy):
    state = opt.init(theta)
    update, state = opt.update(jax.grad(loss)(theta), state, theta, value_fn=loss)
    return optax.apply_updates(theta, update), state


def test_first_dal1_step_on_reference_quadratic():
    g = H @ np.array([-0.35, -0.2])  # (-0.7, -0.004)
    h_closed = 2 * np.linalg.norm(g) / np.linalg.norm(H @ g)  # = 1.0000163...
    theta, state = one_step(dal(p=1.0, hg="hvp"))
    assert float(state.h) == pytest.approx(h_closed, abs=1e-12)
    assert float(state.h) == pytest.approx(1.0, abs=2e-5)
    np.testing.assert_allclose(theta, [-0.35, -0.2] - h_closed * g, atol=1e-12)
    np.testing.assert_allclose(theta, [0.35, -0.196], atol=2e-5)
    assert float(state.hg_norm) == pytest.approx(np.linalg.norm(H @ g), abs=1e-12)
    theta_fd, state_fd = one_step(dal(p=1.0, hg="fd"))
    assert float(state_fd.h) == pytest.approx(float(state.h), abs=1e-6)
    np.testing.assert_allclose(theta_fd, theta, atol=1e-6)


def test_h_is_one_when_gradient_is_top_eigenvector():
    theta, state = one_step(dal(), theta=jnp.array([-0.35, 0.0]))
    assert float(state.h) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(theta, [0.35, 0.0], atol=1e-12)


@pytest.mark.parametrize("p", [0.5, 2.0])
def test_dal_p_rate(p):
    g = H @ np.array([-0.35, -0.2])
    v = np.linalg.norm(H @ g) / np.linalg.norm(g)
    _, state = one_step(dal(p=p))
    assert float(state.h) == pytest.approx(min(2 / v**p, 5.0), rel=1e-12)


def test_max_lr_caps_flat_directions_and_zero_gradient_is_safe():
    _, state = one_step(dal(max_lr=5.0), theta=jnp.array([0.0, -0.2]))  # v = 0.02: 2/v = 100
    assert float(state.h) == 5.0
    theta, state = one_step(dal(hg="fd"), theta=jnp.zeros(2))
    assert float(state.h) == 5.0 and float(state.hg_norm) == 0.0
    np.testing.assert_array_equal(theta, np.zeros(2))


def test_p0_is_fixed_rate_as_reference():
    theta, state = one_step(dal(p=0, fixed_lr=0.3))
    assert float(state.h) == 0.3
    np.testing.assert_allclose(theta, np.array([-0.35, -0.2]) - 0.3 * (H @ [-0.35, -0.2]), atol=1e-15)


def test_window_uses_fixed_rate_outside():
    opt = dal(window=(1, 3), fixed_lr=0.1)
    theta, state, rates = THETA0, opt.init(THETA0), []
    for _ in range(4):
        g = jax.grad(energy)(theta)
        update, state = opt.update(g, state, theta, value_fn=energy)
        expected = 2 * np.linalg.norm(g) / np.linalg.norm(H @ g) if len(rates) in (1, 2) else 0.1
        rates.append(float(state.h))
        assert rates[-1] == pytest.approx(expected, rel=1e-12)
        theta = optax.apply_updates(theta, update)


def test_secant_matches_exact_curvature_on_quadratic():
    """On a quadratic g_1 - g_0 = H (theta_1 - theta_0) and theta_1 - theta_0 = -h g_0."""
    opt = dal(hg="secant", fixed_lr=0.4)
    theta, state = THETA0, opt.init(THETA0)
    g0 = jax.grad(energy)(theta)
    update, state = opt.update(g0, state, theta)  # no value_fn needed
    assert float(state.h) == 0.4
    theta = optax.apply_updates(theta, update)
    _, state = opt.update(jax.grad(energy)(theta), state, theta)
    assert float(state.h) == pytest.approx(2 * np.linalg.norm(g0) / np.linalg.norm(H @ g0), rel=1e-12)


def test_chains_with_clipping_under_jit():
    opt = optax.chain(optax.clip_by_global_norm(0.1), dal())

    @jax.jit
    def step(theta, state):
        g = jax.grad(energy)(theta)
        update, state = opt.update(g, state, theta, value_fn=energy)
        return optax.apply_updates(theta, update), state

    theta, state = step(THETA0, opt.init(THETA0))
    g = H @ np.array([-0.35, -0.2])
    h = 2 * np.linalg.norm(g) / np.linalg.norm(H @ g)  # |Hu|/|u| is scale-free
    np.testing.assert_allclose(theta, np.array([-0.35, -0.2]) - h * 0.1 * g / np.linalg.norm(g), atol=1e-12)
    assert float(state[1].h) == pytest.approx(h, abs=1e-12)

    after = optax.chain(dal(hg="fd"), optax.clip_by_global_norm(0.1))
    update, _ = jax.jit(lambda t, s: after.update(jax.grad(energy)(t), s, t, value_fn=energy))(
        THETA0, after.init(THETA0)
    )
    assert float(optax.tree.norm(update)) == pytest.approx(0.1, rel=1e-12)


def test_per_layer_rates_follow_each_block():
    params = {"a": jnp.array([-0.35]), "b": jnp.array([-0.2])}
    loss = lambda q: jnp.sum(q["a"] ** 2) + 0.01 * jnp.sum(q["b"] ** 2)  # noqa: E731
    opt = dal(per_layer=True)
    state = opt.init(params)
    update, state = opt.update(jax.grad(loss)(params), state, params, value_fn=loss)
    assert float(state.h["a"]) == pytest.approx(1.0, abs=1e-12)
    assert float(state.h["b"]) == 5.0  # 2 / 0.02 capped
    assert float(update["b"][0]) == pytest.approx(-5.0 * 0.02 * -0.2, abs=1e-15)


def test_momentum_rate_from_its_direction():
    opt = dal_momentum(momentum=0.9)
    theta, state = THETA0, opt.init(THETA0)
    g0 = np.asarray(jax.grad(energy)(theta))
    update, state = opt.update(jnp.asarray(g0), state, theta, value_fn=energy)
    theta = optax.apply_updates(theta, update)
    g1 = np.asarray(jax.grad(energy)(theta))
    update, state = opt.update(jnp.asarray(g1), state, theta, value_fn=energy)
    u = g1 + 0.9 * g0
    h = (0.1 / 1.9) * 2 * np.linalg.norm(u) / np.linalg.norm(H @ u)
    assert float(state.h) == pytest.approx(h, rel=1e-12)
    np.testing.assert_allclose(update, -h * u, rtol=1e-12)


def test_adam_rate_from_its_preconditioned_direction():
    opt = dal_adam(b1=0.9, b2=0.999, eps_root=1e-8)
    g = np.asarray(jax.grad(energy)(THETA0))
    update, state = opt.update(jnp.asarray(g), opt.init(THETA0), THETA0, value_fn=energy)
    p_inv = 1 / (np.abs(g) + 1e-8)  # first Adam step: m_hat = g, nu_hat = g^2
    u = p_inv * g
    h = 2 / 1.9 * np.linalg.norm(u) / np.linalg.norm(p_inv * (H @ u))
    assert float(state.h) == pytest.approx(h, rel=1e-9)
    np.testing.assert_allclose(update, -h * u, rtol=1e-9)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"p": -1.0}, "p must be"),
        ({"p": float("nan")}, "p must be"),
        ({"max_lr": 0.0}, "learning rate"),
        ({"hg": "exact"}, "hg must be one of"),
        ({"window": (3, 1), "fixed_lr": 0.1}, "start < stop"),
        ({"p": 0}, "p=0 needs a fixed rate"),
        ({"hg": "secant"}, "secant"),
        ({"window": (0, 5)}, "fixed_lr"),
        ({"eps": -1.0}, "eps must"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(GDFlowsError, match=match):
        dal(**kwargs)


def test_missing_value_fn_is_explained():
    opt = dal()
    with pytest.raises(GDFlowsError, match="value_fn=loss_fn"):
        opt.update(jax.grad(energy)(THETA0), opt.init(THETA0), THETA0)
