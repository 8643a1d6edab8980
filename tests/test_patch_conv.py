"""The CPU convolution (one matmul over shifted copies) equals XLA's convolution, with its derivatives, and the
conv layer compiles to it on the CPU and to XLA's convolution elsewhere."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature.hvp import hvp
from gdflows.models.layers import conv, patch_conv


def native(x, w, stride):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("stride,kernel,size", [(1, 3, (7, 6)), (2, 3, (7, 6)), (2, 3, (8, 8)), (1, 1, (5, 5))])
def test_equals_xla_convolution(stride, kernel, size):
    rng = np.random.default_rng(stride * 100 + kernel * 10 + size[0])
    x = jnp.asarray(rng.normal(size=(2, *size, 3)))
    w = jnp.asarray(rng.normal(size=(kernel, kernel, 3, 4)))
    np.testing.assert_allclose(patch_conv(x, w, stride), native(x, w, stride), rtol=1e-13, atol=1e-13)
    b = jnp.asarray(rng.normal(size=4))
    np.testing.assert_allclose(conv({"w": w, "b": b}, x, stride), native(x, w, stride) + b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("stride", [1, 2])
def test_the_layer_compiles_to_the_shifted_matmul_on_the_cpu_and_to_xla_elsewhere(stride):
    # Both branches give the same numbers, so the choice shows only in the program: no convolution op on the CPU.
    x, params = jnp.ones((2, 7, 6, 3)), {"w": jnp.ones((3, 3, 3, 4)), "b": jnp.zeros(4)}
    traced = jax.jit(functools.partial(conv, stride=stride)).trace(params, x)
    cpu = traced.lower(lowering_platforms=("cpu",)).as_text()
    assert "dot_general" in cpu and "convolution" not in cpu
    gpu = traced.lower(lowering_platforms=("cuda",)).as_text()
    assert "convolution" in gpu and "dot_general" not in gpu


def test_derivatives_equal_at_a_complex_state():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 6, 6, 2)))
    w = jnp.asarray(rng.normal(size=(3, 3, 2, 3)) + 0.1j * rng.normal(size=(3, 3, 2, 3))).ravel()
    v = jnp.asarray(rng.normal(size=w.shape))

    def loss(conv, flat):
        return jnp.sum(jnp.tanh(conv(x.astype(flat.dtype), flat.reshape(3, 3, 2, 3))) ** 2)

    mine, ref = functools.partial(loss, patch_conv), functools.partial(loss, lambda a, b: native(a, b, 1))
    for real in (True, False):
        th = w.real if real else w
        u = v if real else v + 0j
        np.testing.assert_allclose(hvp(mine, th, u), hvp(ref, th, u), rtol=1e-12, atol=1e-12)
