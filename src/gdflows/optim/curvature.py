"""Curvature of a batch loss along a direction, over parameter pytrees: what step-size rules need.

* :func:`tree_hvp`: H u exactly, forward-over-reverse through ``value_fn``.
* :func:`fd_hvp`: H u as ``(grad E(theta + eps u) - grad E(theta)) / eps``,
  ``eps = 0.01 / |u|`` unless given; one extra gradient, error O(eps |u| |D3E|).
  It takes the caller's gradient as ``grad E(theta)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gdflows.curvature.hvp import hvp


def sq(tree) -> jax.Array:
    """|tree|^2, summed over every leaf."""
    return sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(tree))


def dot(a, b) -> jax.Array:
    """a . b, summed over every pair of leaves."""
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def tree_hvp(value_fn, params, u):
    """H(params) u for ``value_fn(params) -> scalar``, u a tree like params."""
    theta, unravel = ravel_pytree(params)
    return unravel(hvp(lambda x: value_fn(unravel(x)), theta, ravel_pytree(u)[0]))


def fd_hvp(value_fn, params, u, grads, eps):
    """(grad E(params + eps u) - grads) / eps, eps = 0.01 / |u| when None."""
    step = eps if eps is not None else 0.01 / jnp.sqrt(jnp.where(sq(u) > 0, sq(u), 1.0))
    shifted = jax.tree_util.tree_map(lambda x, d: x + step * d, params, u)
    g_shift = jax.grad(value_fn)(shifted)
    return jax.tree_util.tree_map(lambda a, b: (a - b) / step, g_shift, grads)
