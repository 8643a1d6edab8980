r"""The flow contract: what :func:`gdflows.integrate` needs from a model of GD.

A flow models GD on a loss E at learning rate h by an ODE in flow time
t = n h (n GD steps):

.. math:: \dot\theta = f(\theta, t).

Every flow declares

* ``loss``: E over a flat theta (checked finite at the start of a solve, and
  holomorphic when the state may turn complex);
* ``lr``: h, or None for a flow that does not depend on it (the NGF);
* ``complex_state``: whether the state may turn complex (the PF, once
  h lambda > 1);
* :meth:`Flow.evaluate`: the field and a :class:`FieldInfo` saying whether it
  met its accuracy (closed-form fields always do; the Krylov PF reports its
  a-posteriori estimate);
* :meth:`Flow.jump`: the state at t = 0+ (the identity unless the flow jumps).

``flow(theta, t)`` is the field alone. :class:`VectorField` wraps any
function ``f(theta, t)`` into this contract.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp


class FieldInfo(eqx.Module):
    """How one field evaluation went: ``converged`` (accuracy met) and ``error``
    (a-posteriori estimate of |field - exact field|; 0 for a closed form)."""

    converged: jax.Array
    error: jax.Array


def exact_info(field) -> FieldInfo:
    """The info of a closed-form field: converged, zero error."""
    return FieldInfo(jnp.asarray(True), jnp.zeros((), jnp.real(field).dtype))


class Flow(eqx.Module):
    """Abstract base of every flow (see the module docstring)."""

    loss: eqx.AbstractVar[Callable | None]
    lr: eqx.AbstractVar[jax.Array | None]
    complex_state: ClassVar[bool] = False

    @abc.abstractmethod
    def evaluate(self, theta) -> tuple[jax.Array, FieldInfo]:
        """(dtheta/dt, info) at ``theta`` (shape (D,))."""

    def __call__(self, theta, t=None):
        return self.evaluate(theta)[0]

    def jump(self, theta):
        """The state at t = 0+."""
        return theta


class VectorField(Flow):
    """Any ``f(theta, t) -> dtheta/dt`` as a flow (no loss to check, no lr of its own)."""

    field: Callable
    loss: None = eqx.field(default=None, init=False)
    lr: None = eqx.field(default=None, init=False)

    def evaluate(self, theta, t=None):
        out = self.field(theta, t)
        return out, exact_info(out)

    def __call__(self, theta, t=None):
        return self.field(theta, t)
