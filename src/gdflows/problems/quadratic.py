r"""Quadratic losses, where the Principal Flow is exact for every learning rate.

.. math:: E(\theta) = \tfrac12 \theta^\top A \theta + b^\top \theta,
          \qquad g = A\theta + b,\quad H = A.

GD multiplies the coordinates along each eigenvector u_i of A by
(1 - h lambda_i) per step; the PF's flow map over time h does the same.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.errors import GDFlowsError

# The authors' example: E = theta^T diag(1, 0.01) theta, so A = diag(2, 0.02).
REFERENCE_THETA0 = (-0.35, -0.2)
REFERENCE_LRS = ((0.5, 20), (0.9, 20), (1.0, 20), (1.05, 5))


class Quadratic(eqx.Module):
    """E(theta) = 1/2 theta^T A theta + b^T theta, A symmetric (D, D)."""

    A: jax.Array
    b: jax.Array

    def __init__(self, A, b=None):
        A = jnp.asarray(A)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise GDFlowsError(f"A must be square (D, D), got shape {A.shape}")
        if not bool(jnp.allclose(A, A.T)):
            raise GDFlowsError("A must be symmetric; pass (A + A.T) / 2")
        b = jnp.zeros(A.shape[0], A.dtype) if b is None else jnp.asarray(b, A.dtype)
        if b.shape != (A.shape[0],):
            raise GDFlowsError(f"b must have shape ({A.shape[0]},), got {b.shape}")
        self.A, self.b = A, b

    def __call__(self, theta):
        return 0.5 * theta @ (self.A @ theta) + self.b @ theta


def reference_quadratic() -> Quadratic:
    """The authors' example: E = theta^T diag(1, 0.01) theta (H = diag(2, 0.02))."""
    return Quadratic(jnp.diag(jnp.array([2.0, 0.02])))


def reference_theta0() -> jax.Array:
    return jnp.array(REFERENCE_THETA0)
