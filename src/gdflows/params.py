"""Parameters as a flat vector theta, or as the pytree a user's model holds.

Eigenvectors of the Hessian live in parameter space, so the numerics work on
a flat vector theta of shape (D,). A user's parameters are usually a pytree
(a dict of arrays, an equinox module); :func:`ravel` lays its leaves end to
end, in ``jax.tree_util`` order, and returns the inverse. Unlike
``jax.flatten_util.ravel_pytree``, the inverse keeps a complex theta complex
(the Principal Flow's state), so a loss over the pytree can be evaluated at
complex parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gdflows.errors import GDFlowsError
from gdflows.validation import check_flat


def is_flat(params) -> bool:
    """A single array (or array-like) rather than a pytree of several."""
    return isinstance(params, jax.Array) or hasattr(params, "__array__")


def ravel(params) -> tuple[jax.Array, Callable]:
    """(theta, unravel): the leaves of ``params`` as one vector, and its inverse.

    ``unravel(x)`` rebuilds the pytree from any x of shape (D,): a real x is
    cast back to each leaf's dtype, a complex x keeps its complex dtype.
    A flat array is returned as it is, with the identity as inverse.
    """
    if is_flat(params):
        return check_flat(params), lambda x: x
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    if not leaves or sum(leaf.size for leaf in leaves) == 0:
        raise GDFlowsError("params holds no arrays; pass the parameters the loss takes")
    for leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise GDFlowsError(
                f"every parameter must hold floats, got a leaf of dtype {leaf.dtype}; "
                "keep integer state out of the parameters (e.g. eqx.partition)"
            )
    dtype = jnp.result_type(*leaves)
    theta = jnp.concatenate([leaf.reshape(-1).astype(dtype) for leaf in leaves])
    shapes = [leaf.shape for leaf in leaves]
    dtypes = [leaf.dtype for leaf in leaves]
    bounds = [0]
    for shape in shapes:
        bounds.append(bounds[-1] + math.prod(shape))

    def unravel(x):
        keep = jnp.iscomplexobj(x)
        pieces = [
            x[a:b].reshape(s).astype(x.dtype if keep else d) for a, b, s, d in zip(bounds, bounds[1:], shapes, dtypes)
        ]
        return jax.tree_util.tree_unflatten(treedef, pieces)

    return theta, unravel


def flatten_loss(loss: Callable, params) -> tuple[Callable, jax.Array, Callable]:
    """Return ``(flat_loss, theta0, unravel)`` with ``flat_loss(theta) = loss(unravel(theta))``.

    A flat 1-D array is passed through unchanged (``unravel`` is the identity).
    """
    theta, unravel = ravel(params)
    if is_flat(params):
        return loss, theta, unravel

    def flat_loss(x):
        return loss(unravel(x))

    return flat_loss, theta, unravel


def unravel_rows(unravel: Callable, rows):
    """A pytree whose leaves carry a leading axis: ``unravel`` applied to each row of ``rows`` (n, D)."""
    return jax.vmap(unravel)(jnp.asarray(rows))
