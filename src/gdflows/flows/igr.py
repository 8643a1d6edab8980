r"""Implicit gradient regularisation flow (Barrett & Dherin, 2021).

.. math:: \dot\theta = -g - \frac{h}{2} H g = -\nabla\big(E + \tfrac{h}{4}\|g\|^2\big)

One-step error against GD: O(h^3) (docs/theory.md, section 2).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gdflows.curvature.hvp import gradient, hvp
from gdflows.flows.base import Flow, exact_info
from gdflows.validation import check_lr


class IGR(Flow):
    """dtheta/dt = -g - (h/2) H g."""

    loss: Callable
    lr: jax.Array  # an array, so a new lr reuses the compiled solve

    def evaluate(self, theta):
        g = gradient(self.loss)(theta)
        field = -g - 0.5 * self.lr * hvp(self.loss, theta, g)
        return field, exact_info(field)


def igr(loss: Callable, lr) -> IGR:
    """The IGR flow of ``loss`` at learning rate ``lr``."""
    return IGR(loss, jnp.asarray(check_lr(lr)))
