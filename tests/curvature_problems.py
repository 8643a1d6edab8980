"""Small networks on synthetic data for the curvature and scalable-PF tests."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gdflows.curvature.chunked import chunked_loss
from gdflows.models.losses import mse
from gdflows.models.mlp import mlp


def tanh_mlp(n=96, din=6, width=12, classes=3, chunk_size=32, seed=0, dtype="float64"):
    """(ChunkedLoss, theta0, full_loss) for a tanh MLP with MSE on random data."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(n, din)), dtype)
    y = jnp.asarray(rng.integers(0, classes, size=n))
    model = mlp((din,), classes, depth=1, width=width, activation="tanh", dtype=dtype)
    theta0, unravel = ravel_pytree(model.init(jax.random.PRNGKey(seed)))

    def example_loss(theta, example):
        xe, ye = example
        return mse(model.apply(unravel(theta), xe[None]), ye[None])

    def full_loss(theta):
        return mse(model.apply(unravel(theta), x), y)

    return chunked_loss(example_loss, (x, y), chunk_size), theta0, full_loss
