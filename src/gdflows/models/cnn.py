"""Small CNN: [conv3x3 -> activation -> avgpool2] * 2 -> dense (channels c, 2c)."""

from __future__ import annotations

import jax

from gdflows.models import get_activation
from gdflows.models.layers import avg_pool2, conv, conv_init, dense, dense_init, flatten
from gdflows.models.model import Model


def cnn(input_shape, num_classes: int, width: int = 8, activation: str = "tanh", dtype="float64") -> Model:
    act = get_activation(activation)
    h, w, c = input_shape
    features = (h // 4) * (w // 4) * 2 * width

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "conv1": conv_init(k1, c, width, dtype),
            "conv2": conv_init(k2, width, 2 * width, dtype),
            "out": dense_init(k3, features, num_classes, dtype),
        }

    def apply(params, x):
        x = avg_pool2(act(conv(params["conv1"], x)))
        x = avg_pool2(act(conv(params["conv2"], x)))
        return dense(params["out"], flatten(x))

    return Model(init, apply, f"cnn{width}-{activation}")
