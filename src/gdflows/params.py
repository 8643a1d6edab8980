"""Flat parameter vectors: eigenvectors of the Hessian live in parameter space.

Every flow works on a flat vector theta of shape (D,). A loss over a pytree
of parameters is turned into a loss over that vector with
``jax.flatten_util.ravel_pytree``; the same ordering is used everywhere.
"""

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gdflows.validation import check_flat


def flatten_loss(loss: Callable, params) -> tuple[Callable, jax.Array, Callable]:
    """Return ``(flat_loss, theta0, unravel)`` with ``flat_loss(theta) = loss(unravel(theta))``.

    A flat 1-D array is passed through unchanged (``unravel`` is the identity).
    """
    if isinstance(params, (jax.Array, jnp.ndarray)) or hasattr(params, "__array__"):
        theta = check_flat(params)
        return loss, theta, lambda x: x
    theta, unravel = ravel_pytree(params)
    if theta.size == 0:
        raise ValueError("params holds no arrays; pass the parameters the loss takes")

    def flat_loss(x):
        return loss(unravel(x))

    return flat_loss, theta, unravel
