"""Models as (init, apply) pairs, and losses on their logits.

``get_model(name, input_shape, num_classes, **kwargs)`` with name a key of :data:`MODELS`; ``width`` is the
width multiplier. :data:`MODELS`, :data:`ACTIVATIONS` and :data:`LOSSES` are the registries (name ->
"module:object"), readable without JAX (the command line's choices): every other name of this package loads
on first use.
"""

from gdflows._lazy import entry, lazy_package, load

MODELS = {name: f"gdflows.models.{name}:{name}" for name in ("mlp", "cnn", "vgg", "resnet")}
# tanh, gelu, softplus and swish are holomorphic (the Principal Flow can run through them); relu is not
ACTIVATIONS = {
    "tanh": "jax.numpy:tanh",
    "gelu": "gdflows.models.activations:gelu",
    "softplus": "gdflows.models.activations:softplus",
    "swish": "gdflows.models.activations:swish",
    "relu": "gdflows.models.activations:relu",
}
LOSSES = {"mse": "gdflows.models.losses:mse", "cross_entropy": "gdflows.models.losses:cross_entropy"}


def get_model(name: str, input_shape, num_classes: int, **kwargs):
    """The :class:`Model` ``name`` (a key of :data:`MODELS`) for inputs of ``input_shape``."""
    return load(entry(MODELS, name, "model"))(tuple(input_shape), num_classes, **kwargs)


def get_activation(name: str):
    """The activation function ``name`` (a key of :data:`ACTIVATIONS`)."""
    return load(entry(ACTIVATIONS, name, "activation"))


def get_loss(name: str):
    """The loss ``name`` (a key of :data:`LOSSES`) on (logits, labels)."""
    return load(entry(LOSSES, name, "loss"))


_API = {
    "Model": "gdflows.models.model",
    "mlp": "gdflows.models.mlp",
    "cnn": "gdflows.models.cnn",
    "vgg": "gdflows.models.vgg",
    "resnet": "gdflows.models.resnet",
    "mse": "gdflows.models.losses",
    "cross_entropy": "gdflows.models.losses",
}
__all__ = ["MODELS", "ACTIVATIONS", "LOSSES", "get_model", "get_activation", "get_loss", *_API]
lazy_package(__name__, _API)
