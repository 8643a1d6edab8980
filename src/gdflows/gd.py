r"""Gradient descent, the discrete process every flow here models.

.. math:: \theta_{n+1} = \theta_n - h\, \nabla E(\theta_n)

Divergence is a result, not an error: once the iterates overflow they are
returned as inf/NaN and :func:`first_nonfinite` says where.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.params import flatten_loss, is_flat, unravel_rows
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
    """Iterates theta_0..theta_steps of GD.

    A flat ``theta0`` (D,) gives an array (steps + 1, D); a pytree gives the
    same pytree with a leading (steps + 1) axis on every leaf. Computed in
    theta0's dtype.
    """
    h = check_lr(lr)
    steps = check_steps(steps)
    flat_loss, theta, unravel = flatten_loss(loss, theta0)
    check_loss_at(flat_loss, theta)
    thetas = _gd_scan(flat_loss, theta, jnp.asarray(h, theta.dtype), steps)
    return thetas if is_flat(theta0) else unravel_rows(unravel, thetas)


def first_nonfinite(values) -> int | None:
    """Index of the first row of ``values`` (n, ...) holding a non-finite entry (GD diverged), or None."""
    values = np.asarray(values)
    bad = ~np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1) if values.ndim else ~np.isfinite(values)
    return int(np.argmax(bad)) if bool(np.any(bad)) else None
