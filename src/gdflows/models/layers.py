"""Dense and convolution layers as (init, apply) pairs over dict parameters.

Weights are drawn N(0, 1/fan_in) (LeCun normal), biases start at zero. The
apply functions use only holomorphic operations, so complex parameters work;
real data times complex weights runs in real arithmetic
(:mod:`gdflows.models.real_data`).
Images are NHWC, kernels HWIO, padding SAME; on the CPU a convolution runs
as one matmul over shifted copies of its input (:func:`patch_conv`, which
says why).
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
    """The SAME-padded NHWC/HWIO convolution at ``stride`` (one hashable function per stride).

    On the CPU it runs as :func:`patch_conv`, elsewhere as XLA's convolution;
    the choice is made when the computation is compiled for its platform.
    """
    native = functools.partial(
        jax.lax.conv_general_dilated,
        window_strides=(stride, stride),
        padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )

    def op(x, w):
        return jax.lax.platform_dependent(x, w, cpu=functools.partial(patch_conv, stride=stride), default=native)

    return op


def patch_conv(x, w, stride: int = 1):
    r"""The SAME convolution as one matmul over the k_h k_w shifted copies of the input.

    .. math:: y[n, i, j, o] = \sum_{a, b, c} x_p[n, s i + a, s j + b, c]\, w[a, b, c, o]
              = P(x)[n, i, j, :] \cdot \mathrm{vec}(w)[:, o],

    with x_p the input padded as SAME pads it and P(x) the patches (the shifted
    copies side by side). Why: inside a loop body (``lax.scan``, ``while_loop``:
    every chunked loss, every Lanczos iteration, every scanned training chunk),
    XLA's CPU backend runs the weight gradient of its convolution through a
    generic emitter, many times slower than the same gradient outside a loop.
    Here every derivative is a matmul, as fast in a loop as outside. The cost
    is memory: the patches hold k_h k_w copies of each conv input.
    """
    kh, kw = w.shape[:2]
    n, h, wd, c = x.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    pad_h, pad_w = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
    xp = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    shifted = [
        xp[:, a : a + (oh - 1) * stride + 1 : stride, b : b + (ow - 1) * stride + 1 : stride, :]
        for a in range(kh)
        for b in range(kw)
    ]
    patches = shifted[0] if len(shifted) == 1 else jnp.concatenate(shifted, axis=-1)
    return patches @ w.reshape(kh * kw * c, w.shape[-1])


def avg_pool2(x):
    """2x2 average pooling (linear, hence holomorphic; max pooling is not)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def flatten(x):
    return x.reshape(x.shape[0], -1)
