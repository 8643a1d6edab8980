"""The holomorphy check: smooth losses pass, piecewise ones are named."""

import jax
import jax.numpy as jnp
import pytest

from gdflows.errors import NotHolomorphicError
from gdflows.flows import principal
from gdflows.holomorphic import check_holomorphic
from gdflows.integrate import integrate

THETA = jnp.zeros(3)
W = jnp.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])


def mlp_loss(act):
    return lambda t: jnp.sum(act(W @ t + 0.1) ** 2)


@pytest.mark.parametrize("act", [jnp.tanh, jax.nn.softplus, lambda z: jax.nn.gelu(z, approximate=True), jnp.exp])
def test_smooth_losses_pass(act):
    check_holomorphic(mlp_loss(act), THETA)


def test_cross_entropy_with_logsumexp_passes():
    check_holomorphic(lambda t: jax.nn.logsumexp(W @ t) - (W @ t)[0], THETA)


@pytest.mark.parametrize(
    "act,name",
    [
        (jax.nn.relu, "max"),
        (lambda z: jnp.maximum(z, 0.1 * z), "max"),
        (jnp.conj, "conj"),
        (lambda z: jnp.where(z > 0, z, 0), "gt|real"),
    ],
)
def test_piecewise_losses_are_named(act, name):
    with pytest.raises(NotHolomorphicError, match=name):
        check_holomorphic(mlp_loss(act), THETA)


def test_real_valued_loss_is_rejected_with_the_fix():
    with pytest.raises(NotHolomorphicError, match="smooth activations"):
        check_holomorphic(lambda t: jnp.sum(jnp.abs(t)), THETA)


def test_pf_integration_refuses_relu_before_solving():
    loss = mlp_loss(jax.nn.relu)
    with pytest.raises(NotHolomorphicError, match="relu > max"):
        integrate(principal(loss, 0.1), jnp.ones(3), 0.1, 2)
