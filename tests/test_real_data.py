"""Real data times complex weights in real arithmetic: same numbers as the complex product."""

import functools
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature.hvp import d3, gradient, hvp
from gdflows.errors import NotHolomorphicError
from gdflows.holomorphic import check_holomorphic
from gdflows.models.real_data import linear, real_times_complex
from gdflows.problems.network import network_problem
from test_models import tiny_data

layers = sys.modules["gdflows.models.layers"]


def complex_weights(rng, *shape):
    return jnp.asarray(rng.normal(size=shape) + 1j * rng.normal(size=shape))


def promoted(op, x, w):
    """The product XLA runs without the split: x promoted to complex."""
    return op(x.astype(w.dtype), w)


@pytest.mark.parametrize("stride", [1, 2])
def test_split_equals_complex_product(stride):
    rng = np.random.default_rng(stride)
    x, w = jnp.asarray(rng.normal(size=(5, 7))), complex_weights(rng, 7, 3)
    np.testing.assert_allclose(real_times_complex(jnp.matmul, x, w), promoted(jnp.matmul, x, w), rtol=1e-14)
    conv = layers._conv_op(stride)
    images, kernel = jnp.asarray(rng.normal(size=(2, 6, 6, 2))), complex_weights(rng, 3, 3, 2, 4)
    np.testing.assert_allclose(
        real_times_complex(conv, images, kernel), promoted(conv, images, kernel), rtol=1e-13, atol=1e-14
    )


def test_linear_promotes_like_the_product():
    rng = np.random.default_rng(3)
    x32 = jnp.ones((2, 3), jnp.float32)
    assert linear(jnp.matmul, x32, complex_weights(rng, 3, 2)).dtype == jnp.complex128
    assert linear(jnp.matmul, x32, jnp.ones((3, 2))).dtype == jnp.float64
    assert linear(jnp.matmul, x32 + 0j, complex_weights(rng, 3, 2)).dtype == jnp.complex128


@pytest.mark.parametrize("name,kwargs", [("mlp", {"depth": 2, "width": 4}), ("cnn", {"width": 2})])
def test_network_derivatives_equal_the_promoted_product(name, kwargs, monkeypatch):
    """g, Hv and D3E[v, v] at a complex state: split layers vs layers on the promoted product."""
    rng = np.random.default_rng(4)
    prob = network_problem(name, tiny_data(n=6), **kwargs)
    theta = prob.theta0 + 0.1j * jnp.asarray(rng.normal(size=prob.theta0.shape))
    v = jnp.asarray(rng.normal(size=theta.shape) + 1j * rng.normal(size=theta.shape))

    def derivatives(loss):
        return gradient(loss)(theta), hvp(loss, theta, v), d3(loss, theta, v)

    split = derivatives(prob.loss)
    monkeypatch.setattr(layers, "linear", promoted)
    reference = derivatives(network_problem(name, tiny_data(n=6), **kwargs).loss)
    for got, want in zip(split, reference):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * float(jnp.max(jnp.abs(want))))


def test_holomorphic_check_exempts_the_split_but_not_what_follows():
    rng = np.random.default_rng(5)
    w = complex_weights(rng, 3, 2)
    x = jnp.asarray(rng.normal(size=(4, 3)))
    flat = functools.partial(jnp.reshape, shape=(3, 2))
    check_holomorphic(lambda th: jnp.sum(linear(jnp.matmul, x, flat(th)) ** 2), w.ravel())
    with pytest.raises(NotHolomorphicError, match="abs"):
        check_holomorphic(lambda th: jnp.sum(jnp.abs(linear(jnp.matmul, x, flat(th)))), w.ravel())
