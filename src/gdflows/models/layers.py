"""Dense and convolution layers as (init, apply) pairs over dict parameters.

Weights are drawn N(0, 1/fan_in) (LeCun normal), biases start at zero. The
apply functions use only holomorphic operations, so complex parameters work;
real data times complex weights runs in real arithmetic
(:mod:`gdflows.models.real_data`).
Images are NHWC, kernels HWIO, padding SAME.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gdflows.models.real_data import linear


def dense_init(key, fan_in: int, fan_out: int, dtype):
    w = jax.random.normal(key, (fan_in, fan_out), dtype) / jnp.sqrt(fan_in).astype(dtype)
    return {"w": w, "b": jnp.zeros((fan_out,), dtype)}


def dense(params, x):
    return linear(jnp.matmul, x, params["w"]) + params["b"]


def conv_init(key, c_in: int, c_out: int, dtype, size: int = 3):
    fan_in = size * size * c_in
    w = jax.random.normal(key, (size, size, c_in, c_out), dtype) / jnp.sqrt(fan_in).astype(dtype)
    return {"w": w, "b": jnp.zeros((c_out,), dtype)}


def conv(params, x, stride: int = 1):
    return linear(_conv_op(stride), x, params["w"]) + params["b"]


@functools.cache
def _conv_op(stride: int):
    """The SAME-padded NHWC/HWIO convolution at ``stride`` (one hashable function per stride)."""
    return functools.partial(
        jax.lax.conv_general_dilated,
        window_strides=(stride, stride),
        padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def avg_pool2(x):
    """2x2 average pooling (linear, hence holomorphic; max pooling is not)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def flatten(x):
    return x.reshape(x.shape[0], -1)
