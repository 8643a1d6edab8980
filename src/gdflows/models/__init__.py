"""Models as (init, apply) pairs, and losses on their logits.

``get_model(name, input_shape, num_classes, **kwargs)`` with name one of
``mlp``, ``cnn``, ``vgg``, ``resnet``; ``width`` is the width multiplier.
"""

from gdflows.errors import GDFlowsError
from gdflows.models.activations import ACTIVATIONS, get_activation
from gdflows.models.cnn import cnn
from gdflows.models.losses import LOSSES, cross_entropy, get_loss, mse
from gdflows.models.mlp import mlp
from gdflows.models.model import Model
from gdflows.models.resnet import resnet
from gdflows.models.vgg import vgg

MODELS = {"mlp": mlp, "cnn": cnn, "vgg": vgg, "resnet": resnet}


def get_model(name: str, input_shape, num_classes: int, **kwargs) -> Model:
    try:
        build = MODELS[name]
    except KeyError:
        raise GDFlowsError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    return build(tuple(input_shape), num_classes, **kwargs)


__all__ = [
    "Model",
    "MODELS",
    "get_model",
    "mlp",
    "cnn",
    "vgg",
    "resnet",
    "ACTIVATIONS",
    "get_activation",
    "LOSSES",
    "get_loss",
    "mse",
    "cross_entropy",
]
