"""Hessian-vector products and third-derivative products, never forming H.

* ``hvp(loss, theta, v) = H(theta) v``: forward-over-reverse,
  ``jvp(grad E, (theta,), (v,))``; about the cost of two gradients.
* ``d3(loss, theta, v) = D3E[v, v] = grad_theta (v^T H(theta) v)`` with v held
  fixed (a stop-gradient on v), the third-order term of the modified flows.

Both work at complex theta for a holomorphic loss (``holomorphic=True``
derivatives), where H is complex-symmetric.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def gradient(loss: Callable) -> Callable:
    """g = grad E, holomorphic at complex theta (dE/dtheta, not its conjugate)."""

    def g(theta):
        if jnp.iscomplexobj(theta):
            return jax.grad(loss, holomorphic=True)(theta)
        return jax.grad(loss)(theta)

    return g


def hvp(loss: Callable, theta, v):
    """H(theta) v by forward-over-reverse differentiation."""
    if jnp.iscomplexobj(theta) or jnp.iscomplexobj(v):
        theta = theta.astype(jnp.result_type(theta, v, jnp.complex64))
        v = v.astype(theta.dtype)
    return jax.jvp(gradient(loss), (theta,), (v,))[1]


def d3(loss: Callable, theta, v):
    """D3E[v, v] = grad_theta ( v^T H(theta) v ), v fixed."""
    v = jax.lax.stop_gradient(v)

    def quad_form(x):
        return jnp.sum(v * hvp(loss, x, v))  # bilinear v^T H v, also at complex x

    return gradient(quad_form)(theta)


def hessian(loss: Callable, theta):
    """Dense Hessian (D, D) for small D; complex-symmetric at complex theta."""
    eye = jnp.eye(theta.shape[0], dtype=theta.dtype)
    return jax.vmap(lambda e: hvp(loss, theta, e))(eye)
