r"""Gradient descent, the discrete process every flow here models.

.. math:: \theta_{n+1} = \theta_n - h\, \nabla E(\theta_n)

Divergence is a result, not an error: once the iterates overflow they are
returned as inf/NaN and :func:`first_nonfinite` says where.
"""

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.params import flatten_loss
from gdflows.validation import check_loss_at, check_lr, check_steps


@eqx.filter_jit
def _gd_scan(loss, theta0, lr, steps):
    grad = jax.grad(loss)

    def step(theta, _):
        nxt = theta - lr * grad(theta)
        return nxt, nxt

    _, thetas = jax.lax.scan(step, theta0, None, length=steps)
    return jnp.concatenate([theta0[None], thetas])


def gd(loss: Callable, theta0, lr, steps: int):
    """Iterates theta_0..theta_steps of GD, shape (steps + 1, D).

    ``theta0`` may be a flat vector or a pytree; a pytree is flattened with
    ``ravel_pytree`` (rows are flat vectors in that order).
    """
    h = check_lr(lr)
    steps = check_steps(steps)
    flat_loss, theta, _ = flatten_loss(loss, theta0)
    check_loss_at(flat_loss, theta)
    return _gd_scan(flat_loss, theta, jnp.asarray(h, theta.dtype), steps)


def first_nonfinite(thetas) -> int | None:
    """Index of the first non-finite iterate (GD diverged), or None."""
    bad = ~jnp.all(jnp.isfinite(thetas), axis=tuple(range(1, jnp.ndim(thetas))))
    return int(jnp.argmax(bad)) if bool(jnp.any(bad)) else None
