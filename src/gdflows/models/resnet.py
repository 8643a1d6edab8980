"""ResNet-style net without normalisation layers.

stem conv3x3 (width) -> per stage: [downsample] + ``blocks`` residual blocks
-> global average pool -> dense. Stages have channels ``width * (1, 2, 4)``;
stages after the first halve the resolution (avgpool2) and widen with a 1x1 conv.

Residual block: x <- (x + conv(act(conv(act(x))))) / sqrt(2). The 1/sqrt(2)
keeps the activation scale constant across blocks, the job batch norm does in
the original; batch norm itself is avoided because it is not holomorphic.
"""

from __future__ import annotations

import math

import jax

from gdflows.models import get_activation
from gdflows.models.layers import avg_pool2, conv, conv_init, dense, dense_init
from gdflows.models.model import Model

STAGES = (1, 2, 4)


def resnet(
    input_shape, num_classes: int, width: int = 8, blocks: int = 1, activation: str = "tanh", dtype="float64"
) -> Model:
    act = get_activation(activation)
    c = input_shape[-1]
    channels = [width * m for m in STAGES]

    def init(key):
        keys = iter(jax.random.split(key, 2 + len(STAGES) * (1 + 2 * blocks)))
        params = {"stem": conv_init(next(keys), c, width, dtype), "stages": []}
        c_in = width
        for ch in channels:
            stage = {
                "proj": conv_init(next(keys), c_in, ch, dtype, size=1),
                "blocks": [[conv_init(next(keys), ch, ch, dtype) for _ in range(2)] for _ in range(blocks)],
            }
            params["stages"].append(stage)
            c_in = ch
        params["out"] = dense_init(next(keys), channels[-1], num_classes, dtype)
        return params

    def apply(params, x):
        x = conv(params["stem"], x)
        for i, stage in enumerate(params["stages"]):
            x = conv(stage["proj"], avg_pool2(x) if i else x)
            for first, second in stage["blocks"]:
                x = (x + conv(second, act(conv(first, act(x))))) / math.sqrt(2)
        return dense(params["out"], act(x).mean(axis=(1, 2)))

    return Model(init, apply, f"resnet{width}x{blocks}-{activation}")
