"""Activations (by name: :data:`gdflows.models.ACTIVATIONS`). tanh, gelu, softplus, swish: holomorphic; relu: not.

The Principal Flow evaluates the loss at complex parameters, so the default
activations are entire (or analytic near the real axis) functions written with
holomorphic operations only:

* ``tanh``
* ``gelu``: the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
* ``softplus``: log(1 + e^x) (the numerically stable real form for real input)
* ``swish``: x sigmoid(x) = x (1 + tanh(x/2)) / 2 (tanh keeps it stable for large |x|)
* ``relu``: max(x, 0), real input only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gdflows.errors import NotHolomorphicError


def gelu(x):
    return 0.5 * x * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def softplus(x):
    if jnp.iscomplexobj(x):
        return jnp.log1p(jnp.exp(x))
    return jax.nn.softplus(x)


def swish(x):
    return 0.5 * x * (1 + jnp.tanh(0.5 * x))


def relu(x):
    if jnp.iscomplexobj(x):
        raise NotHolomorphicError(
            "relu is not holomorphic, so the loss cannot be evaluated at complex "
            "parameters; use activation='tanh', 'gelu', 'softplus' or 'swish'"
        )
    return jnp.maximum(x, 0)
