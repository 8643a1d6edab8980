"""Chunked loss, gradient, HVP and D3 against the same quantities on the whole batch."""

import jax.numpy as jnp
import numpy as np
import pytest

from curvature_problems import tanh_mlp
from gdflows.curvature import d3, gradient, hvp
from gdflows.curvature.chunked import (
    chunked_loss,
    d3_of,
    example_bytes,
    fitting_chunk,
    grad_of,
    hvp_of,
    value_and_grad_of,
)
from gdflows.errors import GDFlowsError


@pytest.mark.parametrize("chunk_size", [25, 100])
def test_chunked_matches_full_batch(chunk_size):
    loss, theta, full = tanh_mlp(n=96, chunk_size=chunk_size)
    v = jnp.asarray(np.random.default_rng(1).normal(size=theta.shape))
    np.testing.assert_allclose(loss(theta), full(theta), rtol=1e-13)
    np.testing.assert_allclose(grad_of(loss)(theta), gradient(full)(theta), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(hvp_of(loss)(theta, v), hvp(full, theta, v), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(d3_of(loss)(theta, v), d3(full, theta, v), rtol=1e-10, atol=1e-12)


def test_remat_call_differentiates_like_the_chunk_sums():
    loss, theta, _ = tanh_mlp(chunk_size=20)
    v = jnp.ones_like(theta)
    np.testing.assert_allclose(hvp(loss, theta, v), hvp_of(loss)(theta, v), rtol=1e-12, atol=1e-14)


def test_complex_state_is_holomorphic():
    loss, theta, full = tanh_mlp(chunk_size=32)
    rng = np.random.default_rng(2)
    z = theta + 1e-2j * jnp.asarray(rng.normal(size=theta.shape))
    v = jnp.asarray(rng.normal(size=theta.shape))
    np.testing.assert_allclose(hvp_of(loss)(z, v), hvp(full, z, v), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(grad_of(loss)(z), gradient(full)(z), rtol=1e-11, atol=1e-14)
    assert jnp.iscomplexobj(hvp_of(loss)(z, v))


def test_float32_stays_float32():
    loss, theta, full = tanh_mlp(chunk_size=32, dtype="float32")
    out = hvp_of(loss)(theta, jnp.ones_like(theta))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, hvp(full, theta, jnp.ones_like(theta)), rtol=1e-4, atol=1e-5)


def test_bad_input_names_the_fix():
    x, y = jnp.ones((10, 3)), jnp.ones(9)
    with pytest.raises(GDFlowsError, match="leading"):
        chunked_loss(lambda th, e: 0.0, (x, y), 4)
    with pytest.raises(GDFlowsError, match="chunk_size"):
        chunked_loss(lambda th, e: 0.0, x, 0)


def test_value_and_grad_and_mean_of_any_per_example_quantity():
    loss, theta, full = tanh_mlp(n=96, chunk_size=25)  # 4 chunks, the last padded
    E, g = value_and_grad_of(loss)(theta)
    np.testing.assert_allclose(E, full(theta), rtol=1e-13)
    np.testing.assert_allclose(g, gradient(full)(theta), rtol=1e-11, atol=1e-14)
    z = theta + 1e-2j * jnp.ones_like(theta)
    np.testing.assert_allclose(value_and_grad_of(loss)(z)[1], gradient(full)(z), rtol=1e-11, atol=1e-14)
    ones, twice = loss.mean(theta, lambda th, e: (jnp.ones(()), 2 * loss.example_loss(th, e)))
    assert float(ones) == pytest.approx(1.0, rel=1e-14)  # the padding weighs nothing
    np.testing.assert_allclose(twice, 2 * full(theta), rtol=1e-13)


def test_fitting_chunk_is_the_largest_power_of_two_under_the_limit():
    assert fitting_chunk(1000, 32_000, 256) == 32  # 32,000 / 1,000 = 32 exactly
    assert fitting_chunk(1000, 63_999, 256) == 32  # 63.999 -> 32, not 64
    assert fitting_chunk(10, 10**9, 256) == 256  # capped by most
    assert fitting_chunk(10**9, 1, 256) == 1  # never 0
    assert fitting_chunk(0, 1, 100) == 64  # free examples: the largest power of two <= most
    with pytest.raises(GDFlowsError, match="must be integers"):
        fitting_chunk(-1, 10, 10)


def test_example_bytes_counts_what_one_more_example_adds():
    theta = jnp.ones(100, jnp.float32)

    def loss(t, x):  # per example: x * t (100 floats), tanh (100), sum (1); t * 2 depends on theta alone
        return jnp.sum(jnp.tanh(x * (2 * t)))

    assert example_bytes(loss, theta, jnp.ones(100, jnp.float32)) == (100 + 100 + 1) * 4
    assert example_bytes(loss, theta.astype(jnp.float64), jnp.ones(100, jnp.float64)) == (100 + 100 + 1) * 8
