r"""A linear map of real data by complex weights, in real arithmetic.

.. math::

    L(x, W) = L(x, \Re W) + i\, L(x, \Im W), \qquad
    [\,L(x, \Re W) \;\; L(x, \Im W)\,] = L\big(x, [\,\Re W \;\; \Im W\,]\big),

for L bilinear and real on real arguments, with W's output channels on its
last axis (a matmul, or a convolution with HWIO kernels). At a complex PF
state the first layer multiplies real data by complex weights; left to
itself, XLA promotes the data to complex and runs a complex product (four
real products per entry, the data copied as complex). The split above reads
the data once, in one real product with twice the output channels
(``benchmarks/pf_scale.py`` measures what it saves).

The split is exact and complex-linear in W, so the loss stays holomorphic
and JAX's derivatives through ``real``/``imag`` are the holomorphic ones;
:func:`gdflows.holomorphic.check_holomorphic` exempts
:func:`real_times_complex` by name for that reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp


def linear(op: Callable, x, w):
    """op(x, w); by :func:`real_times_complex` when x is real and w complex.

    ``op`` must be hashable (a module-level function), bilinear, real on
    real arguments, with output channels on the last axis of both w and
    the result.
    """
    if jnp.iscomplexobj(x) or not jnp.iscomplexobj(w):
        dtype = jnp.result_type(x, w)
        return op(x.astype(dtype), w.astype(dtype))
    return real_times_complex(op, x, w)


@functools.partial(jax.jit, static_argnums=0)
def real_times_complex(op: Callable, x, w):
    """op(x, Re W) + i op(x, Im W), as one real op on [Re W, Im W] (last axis)."""
    n = w.shape[-1]
    dtype = jnp.result_type(x, w.real)
    y = op(x.astype(dtype), jnp.concatenate([w.real, w.imag], axis=-1).astype(dtype))
    return jax.lax.complex(y[..., :n], y[..., n:])
