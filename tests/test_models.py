import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.data import Dataset
from gdflows.errors import GDFlowsError, NotHolomorphicError
from gdflows.models import cross_entropy, get_model, mse
from gdflows.models.activations import gelu, softplus, swish
from gdflows.problems.network import network_problem


def tiny_data(shape=(8, 8, 1), n=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n,) + shape)
    y = np.arange(n) % k
    return Dataset(x, y, x[:4], y[:4], k, "tiny")


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("mlp", {"depth": 2, "width": 5}),
        ("cnn", {"width": 2}),
        ("vgg", {"width": 2, "hidden": 4}),
        ("resnet", {"width": 2, "blocks": 1}),
    ],
)
def test_logit_shapes_and_seeded_init(name, kwargs):
    data = tiny_data()
    prob = network_problem(name, data, seed=3, **kwargs)
    assert jax.jit(prob.logits)(prob.theta0, data.x_train).shape == (12, 3)
    model = get_model(name, data.input_shape, 3, **kwargs)
    same = jax.flatten_util.ravel_pytree(model.init(jax.random.PRNGKey(3)))[0]
    other = jax.flatten_util.ravel_pytree(model.init(jax.random.PRNGKey(4)))[0]
    np.testing.assert_array_equal(prob.theta0, same)
    assert not np.allclose(prob.theta0, other)


def test_flat_loss_equals_pytree_loss():
    data = tiny_data()
    prob = network_problem("cnn", data, loss="cross_entropy", width=2)
    model = get_model("cnn", data.input_shape, 3, width=2)
    params = model.init(jax.random.PRNGKey(0))
    direct = cross_entropy(model.apply(params, data.x_train), data.y_train)
    assert prob.loss(prob.theta0) == pytest.approx(float(direct), rel=1e-14)
    assert prob.batch_loss(prob.theta0, data.x_train, data.y_train) == pytest.approx(float(direct), rel=1e-14)


def test_losses_closed_form():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y = jnp.array([1, 0])
    # mse: 0.5 * ((1^2 + 1^2 + .5^2) + (1 + 0 + 9)) / 2
    assert mse(logits, y) == pytest.approx(0.5 * (2.25 + 10.0) / 2)
    expected = np.mean([np.log(np.exp(logits[i]).sum()) - logits[i, y[i]] for i in range(2)])
    assert cross_entropy(logits, y) == pytest.approx(float(expected), rel=1e-14)
    big = jnp.array([[1000.0, 0.0]])
    assert cross_entropy(big, jnp.array([1])) == pytest.approx(1000.0)


def test_gelu_is_tanh_approximation_and_softplus_and_swish_forms_agree():
    x = jnp.linspace(-3, 3, 7)
    np.testing.assert_allclose(gelu(x), jax.nn.gelu(x, approximate=True), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        swish(jnp.array([-800.0, -3.0, 0.5, 800.0])),
        jax.nn.swish(jnp.array([-800.0, -3.0, 0.5, 800.0])),
        rtol=1e-14,
        atol=1e-300,
    )
    np.testing.assert_allclose(softplus(x + 0j).real, jax.nn.softplus(x), rtol=1e-13)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["tanh", "gelu", "softplus", "swish"])
def test_loss_holomorphic_at_complex_params(loss, activation):
    """Complex derivative by jax agrees with a difference quotient along a complex direction."""
    data = tiny_data(n=6)
    prob = network_problem("mlp", data, loss=loss, depth=1, width=4, activation=activation)
    rng = np.random.default_rng(1)
    theta = prob.theta0 + 0.1j * rng.normal(size=prob.theta0.shape)
    v = rng.normal(size=theta.shape) + 1j * rng.normal(size=theta.shape)
    g = jax.grad(prob.loss, holomorphic=True)(theta)
    eps = 1e-6
    quotient = (prob.loss(theta + eps * v) - prob.loss(theta - eps * v)) / (2 * eps)
    assert jnp.sum(g * v) == pytest.approx(complex(quotient), rel=1e-7)


def test_relu_rejects_complex_and_unknown_names():
    data = tiny_data()
    prob = network_problem("mlp", data, activation="relu", width=3)
    with pytest.raises(NotHolomorphicError, match="tanh"):
        prob.loss(prob.theta0 + 0j)
    with pytest.raises(GDFlowsError, match="choose one of"):
        network_problem("transformer", data)
    with pytest.raises(GDFlowsError, match="choose one of"):
        network_problem("mlp", data, activation="mish")


def test_accuracy_counts_argmax():
    data = tiny_data(n=3)
    prob = network_problem("mlp", data, width=3)
    logits = prob.logits(prob.theta0, data.x_train)
    expected = np.mean(np.argmax(logits, -1) == data.y_train)
    assert prob.accuracy(prob.theta0, data.x_train, data.y_train) == pytest.approx(expected)
