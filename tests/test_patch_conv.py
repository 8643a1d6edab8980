"""The CPU convolution (one matmul over shifted copies) equals XLA's convolution, with its derivatives."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature.hvp import hvp
from gdflows.models.layers import _conv_op, patch_conv

RNG = np.random.default_rng(0)


def native(x, w, stride):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("stride,kernel,size", [(1, 3, (7, 6)), (2, 3, (7, 6)), (2, 3, (8, 8)), (1, 1, (5, 5))])
def test_equals_xla_convolution(stride, kernel, size):
    x = jnp.asarray(RNG.normal(size=(2, *size, 3)))
    w = jnp.asarray(RNG.normal(size=(kernel, kernel, 3, 4)))
    np.testing.assert_allclose(patch_conv(x, w, stride), native(x, w, stride), rtol=1e-13, atol=1e-13)
    # the layer's op picks it on the CPU
    np.testing.assert_allclose(_conv_op(stride)(x, w), native(x, w, stride), rtol=1e-13, atol=1e-13)


def test_derivatives_equal_at_a_complex_state():
    x = jnp.asarray(RNG.normal(size=(3, 6, 6, 2)))
    w = jnp.asarray(RNG.normal(size=(3, 3, 2, 3)) + 0.1j * RNG.normal(size=(3, 3, 2, 3))).ravel()
    v = jnp.asarray(RNG.normal(size=w.shape))

    def loss(conv, flat):
        return jnp.sum(jnp.tanh(conv(x.astype(flat.dtype), flat.reshape(3, 3, 2, 3))) ** 2)

    mine, ref = functools.partial(loss, patch_conv), functools.partial(loss, lambda a, b: native(a, b, 1))
    for real in (True, False):
        th = w.real if real else w
        u = v if real else v + 0j
        np.testing.assert_allclose(hvp(mine, th, u), hvp(ref, th, u), rtol=1e-12, atol=1e-12)
