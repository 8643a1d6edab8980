"""A neural network on a dataset as a loss over a flat parameter vector theta.

E(theta) = (1/N) sum_n l(f(unravel(theta), x_n), y_n) over the full training
set, with f a model from :mod:`gdflows.models` and l ``mse`` or
``cross_entropy``. ``batch_loss(theta, x, y)`` is the same mean over any batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gdflows.data import Dataset
from gdflows.models import Model, get_loss, get_model
from gdflows.params import flatten_loss


@dataclasses.dataclass(frozen=True)
class NetworkProblem:
    loss: Callable  # theta -> E(theta), full training batch
    batch_loss: Callable  # (theta, x, y) -> mean loss over the batch
    theta0: jax.Array  # flat initial parameters
    unravel: Callable  # theta -> params pytree
    model: Model
    data: Dataset
    loss_name: str

    def logits(self, theta, x):
        return self.model.apply(self.unravel(theta), x)

    def accuracy(self, theta, x, y) -> jax.Array:
        """Fraction of examples whose largest (real part of the) logit is the label."""
        return jnp.mean(jnp.argmax(self.logits(theta, x).real, axis=-1) == y)


def network_problem(
    model_name: str, data: Dataset, loss: str = "mse", seed: int = 0, dtype="float64", **model_kwargs
) -> NetworkProblem:
    """Build the model, initialise it from ``seed``, and close the loss over ``data``.

    ``model_kwargs`` go to the model builder (e.g. ``depth``, ``width``, ``activation``).
    """
    model = get_model(model_name, data.input_shape, data.num_classes, dtype=dtype, **model_kwargs)
    loss_fn = get_loss(loss)
    params = model.init(jax.random.PRNGKey(seed))
    _, unravel = ravel_pytree(params)
    x_train = jnp.asarray(data.x_train, dtype)
    y_train = jnp.asarray(data.y_train)

    def batch_loss(theta, x, y):
        return loss_fn(model.apply(unravel(theta), x), y)

    full_loss, theta0, _ = flatten_loss(lambda p: loss_fn(model.apply(p, x_train), y_train), params)
    return NetworkProblem(full_loss, batch_loss, theta0, unravel, model, data, loss)
