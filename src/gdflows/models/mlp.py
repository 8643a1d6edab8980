"""Fully connected network: x -> [dense -> activation] * depth -> dense."""

from __future__ import annotations

import math

import jax

from gdflows.models import get_activation
from gdflows.models.layers import dense, dense_init, flatten
from gdflows.models.model import Model


def mlp(
    input_shape, num_classes: int, depth: int = 2, width: int = 64, activation: str = "tanh", dtype="float64"
) -> Model:
    act = get_activation(activation)
    sizes = [math.prod(input_shape)] + [width] * depth + [num_classes]

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [dense_init(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

    def apply(params, x):
        h = flatten(x)
        for layer in params[:-1]:
            h = act(dense(layer, h))
        return dense(params[-1], h)

    return Model(init, apply, f"mlp{depth}x{width}-{activation}")
