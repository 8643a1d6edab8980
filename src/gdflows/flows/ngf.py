r"""Negative gradient flow: :math:`\dot\theta = -\nabla E(\theta)`.

One-step error against GD: O(h^2) (docs/theory.md, section 2).
"""

from collections.abc import Callable

from gdflows.curvature.hvp import gradient
from gdflows.flows.base import Flow, exact_info


class NGF(Flow):
    """dtheta/dt = -g. It does not depend on h (``lr`` is None)."""

    loss: Callable
    lr: None = None

    def evaluate(self, theta):
        field = -gradient(self.loss)(theta)
        return field, exact_info(field)


def ngf(loss: Callable, lr=None) -> NGF:
    """The negative gradient flow of ``loss`` (a function of a flat vector). It does not depend on h: ``lr`` is
    accepted so that every flow is built as ``factory(loss, lr)``, and ignored."""
    return NGF(loss)
