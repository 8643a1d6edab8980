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
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.validation import check_flat


def is_flat(params) -> bool:
    """A single array (or array-like) rather than a pytree of several."""
    return isinstance(params, jax.Array) or hasattr(params, "__array__")


class Unravel(eqx.Module):
    """theta (D,) -> the pytree it was laid out from; a real theta is cast back to each
    leaf's dtype, a complex one keeps its complex dtype. Static and hashable, so a
    compiled function taking it is reused for every pytree of the same structure."""

    treedef: Any = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)
    dtypes: tuple = eqx.field(static=True)

    def __call__(self, x):
        keep = jnp.iscomplexobj(x)
        bounds = [0]
        for shape in self.shapes:
            bounds.append(bounds[-1] + math.prod(shape))
        pieces = [
            x[a:b].reshape(s).astype(x.dtype if keep else d)
            for a, b, s, d in zip(bounds, bounds[1:], self.shapes, self.dtypes)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, pieces)


class FlatLoss(eqx.Module):
    """E(theta) = loss(unravel(theta)): a loss over a pytree as a loss over flat vectors."""

    loss: Callable
    unravel: Unravel

    def __call__(self, x):
        return self.loss(self.unravel(x))


def _identity(x):
    return x


def ravel(params) -> tuple[jax.Array, Callable]:
    """(theta, unravel): the leaves of ``params`` as one vector, and its inverse (:class:`Unravel`).

    A flat array is returned as it is, with the identity as inverse.
    """
    if is_flat(params):
        return check_flat(params), _identity
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
    return theta, Unravel(treedef, tuple(leaf.shape for leaf in leaves), tuple(leaf.dtype for leaf in leaves))


def flatten_loss(loss: Callable, params) -> tuple[Callable, jax.Array, Callable]:
    """Return ``(flat_loss, theta0, unravel)`` with ``flat_loss(theta) = loss(unravel(theta))``.

    A flat 1-D array is passed through unchanged (``unravel`` is the identity).
    """
    theta, unravel = ravel(params)
    if is_flat(params):
        return loss, theta, unravel
    return FlatLoss(loss, unravel), theta, unravel


def with_flat_loss(flow, unravel: Callable):
    """A flow (any module with a ``loss`` field) whose loss over a pytree becomes one over flat vectors,
    ``loss(unravel(theta))``."""
    return eqx.tree_at(lambda f: f.loss, flow, FlatLoss(flow.loss, unravel))


def states_like(params, unravel: Callable, rows):
    """``rows`` (n, D) as they are for flat ``params``, or as a pytree like ``params`` with a leading n axis
    (numpy leaves)."""
    if is_flat(params):
        return rows
    return jax.tree_util.tree_map(np.asarray, unravel_rows(unravel, rows))


def unravel_rows(unravel: Callable, rows):
    """A pytree whose leaves carry a leading axis: ``unravel`` applied to each row of ``rows`` (n, D)."""
    return jax.vmap(unravel)(jnp.asarray(rows))


def ravel_rows(tree, dim: int, name: str = "vectors") -> jax.Array:
    """The inverse of :func:`unravel_rows`: a pytree whose leaves carry a leading axis b, as rows (b, D).

    A single array must already have shape (b, D = ``dim``).
    """
    if is_flat(tree):
        rows = jnp.asarray(tree)
    else:
        leaves = [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
        if not leaves or any(leaf.ndim == 0 or leaf.shape[0] != leaves[0].shape[0] for leaf in leaves):
            raise GDFlowsError(
                f"{name} given as a pytree need the same leading axis (one row per vector) on every leaf"
            )
        rows = jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)
    if rows.ndim != 2 or rows.shape[1] != dim:
        raise GDFlowsError(f"{name} must have shape (b, D = {dim}) or be pytrees like the parameters, got {rows.shape}")
    return rows
