r"""The Hessian at a fixed theta as a linear operator, linearised once when it fits the memory budget.

Every curvature solve at one theta (a Lanczos run, the Krylov PF field, the central flow's subspace refresh)
applies :math:`v \mapsto H(\theta) v` many times. Forward-over-reverse recomputes the forward and backward
passes at every product:

.. math:: H v = \partial_\epsilon\, \nabla E(\theta + \epsilon v)\big|_{\epsilon=0}
    \quad (\text{one } \mathtt{jvp} \text{ of } \nabla E \text{ per product}).

Linearising :math:`\nabla E` at theta once (``jax.linearize``) keeps the residuals of those passes
(activations and their derivatives, chunk by chunk for a :class:`~gdflows.curvature.ChunkedLoss`) and leaves
only the tangent passes per product: the same :math:`H v` to rounding, for the memory of the residuals.
:func:`hessian_operator` measures that memory from shapes alone (``jax.eval_shape``: nothing is computed)
and linearises when it is at most ``budget`` bytes (default :func:`memory_budget`), else falls back to
forward-over-reverse; :class:`HessianOperator` says which was used and what the residuals would cost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature.chunked import grad_of, hvp_of

BUDGET_FRACTION = 0.25  # default budget: this fraction of the memory of theta's device


class HessianOperator(NamedTuple):
    """v -> H(theta) v; ``linearized``: whether the residuals were kept; ``residual_bytes``: their size;
    ``gradient``: g = grad E(theta) (the linearisation's primal output, so a caller that needs g as well as
    H, as the PF field does, gets it without another pass)."""

    matvec: Callable
    linearized: bool
    residual_bytes: int
    gradient: jax.Array


def memory_budget(device=None) -> int:
    """:data:`BUDGET_FRACTION` of the memory of ``device`` (default: this process's first): an accelerator's memory
    limit where JAX reports one, else the machine's physical memory."""
    device = jax.local_devices()[0] if device is None else device
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    total = (stats or {}).get("bytes_limit")
    if total is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(BUDGET_FRACTION * total)


def residual_bytes(loss: Callable, theta) -> int:
    """Bytes of the residuals ``jax.linearize`` keeps for grad E at theta (from shapes; nothing computed)."""
    spec = jax.ShapeDtypeStruct(theta.shape, theta.dtype)
    residuals = jax.eval_shape(lambda t: jax.linearize(grad_of(loss), t)[1], spec)
    return int(sum(np.prod(r.shape) * np.dtype(r.dtype).itemsize for r in jax.tree_util.tree_leaves(residuals)))


def hessian_operator(loss: Callable, theta, budget: int | None = None) -> HessianOperator:
    """H(theta) as an operator, linearised when its residuals fit ``budget`` bytes (see the module).

    Traceable: the choice is made from shapes, at trace time; ``budget=0`` always recomputes. Call it under
    ``jit``: there, a caller that does not use ``gradient`` does not compute it.
    """
    need = residual_bytes(loss, theta)
    if need > (memory_budget() if budget is None else budget):
        return HessianOperator(lambda v: hvp_of(loss)(theta, v), False, need, grad_of(loss)(theta))
    gradient, linear = jax.linearize(grad_of(loss), theta)

    def matvec(v):
        if jnp.iscomplexobj(v) and not jnp.iscomplexobj(theta):  # H is real: act on both parts
            return (linear(v.real.astype(theta.dtype)) + 1j * linear(v.imag.astype(theta.dtype))).astype(v.dtype)
        return linear(v.astype(theta.dtype))

    return HessianOperator(matvec, True, need, gradient)
