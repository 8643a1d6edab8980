r"""Third-order modified flow: backward error analysis of GD to order h^2.

.. math::

    \dot\theta = -g - \frac{h}{2} H g
                 - h^2\Big[\frac{1}{3} H^2 g + \frac{1}{12} D^3E[g, g]\Big],

with :math:`D^3E[g,g] = \nabla_\theta (v^\top H(\theta) v)|_{v=g}`.
One-step error against GD: O(h^4) (docs/theory.md, section 2).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gdflows.curvature.hvp import d3, gradient, hvp
from gdflows.flows.base import Flow, exact_info
from gdflows.validation import check_lr


class ThirdOrder(Flow):
    """dtheta/dt = -g - (h/2) H g - h^2 [ H^2 g / 3 + D3E[g, g] / 12 ]."""

    loss: Callable
    lr: jax.Array  # an array, so a new lr reuses the compiled solve

    def evaluate(self, theta):
        h = self.lr
        g = gradient(self.loss)(theta)
        hg = hvp(self.loss, theta, g)
        hhg = hvp(self.loss, theta, hg)
        field = -g - 0.5 * h * hg - h**2 * (hhg / 3 + d3(self.loss, theta, g) / 12)
        return field, exact_info(field)


def third_order(loss: Callable, lr) -> ThirdOrder:
    """The third-order modified flow of ``loss`` at learning rate ``lr``."""
    return ThirdOrder(loss, jnp.asarray(check_lr(lr)))
