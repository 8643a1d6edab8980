"""VGG-style net: stages of two conv3x3 + activation, then avgpool2; channels
``width * (1, 2, 4)``; then flatten -> dense -> activation -> dense.

No batch normalisation: it divides by a variance of activations, which is not
holomorphic at complex parameters.
"""

from __future__ import annotations

import jax

from gdflows.models import get_activation
from gdflows.models.layers import avg_pool2, conv, conv_init, dense, dense_init, flatten
from gdflows.models.model import Model

STAGES = (1, 2, 4)


def vgg(
    input_shape, num_classes: int, width: int = 8, hidden: int = 64, activation: str = "tanh", dtype="float64"
) -> Model:
    act = get_activation(activation)
    h, w, c = input_shape
    channels = [width * m for m in STAGES]
    side = 2 ** len(STAGES)
    features = (h // side) * (w // side) * channels[-1]

    def init(key):
        keys = iter(jax.random.split(key, 2 * len(STAGES) + 2))
        convs, c_in = [], c
        for ch in channels:
            convs.append([conv_init(next(keys), c_in, ch, dtype), conv_init(next(keys), ch, ch, dtype)])
            c_in = ch
        return {
            "convs": convs,
            "hidden": dense_init(next(keys), features, hidden, dtype),
            "out": dense_init(next(keys), hidden, num_classes, dtype),
        }

    def apply(params, x):
        for first, second in params["convs"]:
            x = avg_pool2(act(conv(second, act(conv(first, x)))))
        x = act(dense(params["hidden"], flatten(x)))
        return dense(params["out"], x)

    return Model(init, apply, f"vgg{width}-{activation}")
