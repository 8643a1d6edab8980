r"""Negative gradient flow: :math:`\dot\theta = -\nabla E(\theta)`.

One-step error against GD: O(h^2).
"""

from typing import Callable

import equinox as eqx

from gdflows.curvature.hvp import gradient


class NGF(eqx.Module):
    """dtheta/dt = -g."""

    loss: Callable

    def __call__(self, theta, t=None):
        return -gradient(self.loss)(theta)


def ngf(loss: Callable) -> NGF:
    """The negative gradient flow of ``loss`` (a function of a flat vector)."""
    return NGF(loss)
