r"""Batch sharpness: the curvature that minibatch SGD's stability depends on (the "edge of stochastic
stability", arXiv:2412.20553).

For minibatches B with gradients :math:`g_B` and Hessians :math:`H_B` of the batch loss,

.. math:: \mathrm{BS} = \mathbb{E}_B\!\left[\frac{g_B^T H_B\, g_B}{|g_B|^2}\right],

the curvature of each batch's loss along its own step direction, averaged over batches. Minibatch SGD at
rate eta is found to hold it at 2/eta where the full-batch lambda_max sits below. One gradient and one HVP
per batch (:func:`batch_sharpness`); the batches' spread comes with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.params import flatten_loss

__all__ = ["BatchSharpness", "batch_sharpness"]


@dataclasses.dataclass(frozen=True)
class BatchSharpness:
    """``values``: g_B^T H_B g_B / |g_B|^2 per batch; ``mean``; ``sem`` (standard error over the batches)."""

    values: np.ndarray
    mean: float
    sem: float


def batch_sharpness(batch_loss: Callable, params, batches: Iterable) -> BatchSharpness:
    """Batch sharpness of ``batch_loss(params, batch)`` over ``batches`` (see the module); params a pytree.
    Compiled once per ``batch_loss`` and batch shape (pass the same function at every call)."""
    values = np.asarray([float(_ratio(batch_loss, params, batch)) for batch in batches])
    if not values.size:
        raise GDFlowsError("batches is empty; pass at least one minibatch")
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return BatchSharpness(values, float(values.mean()), float(sem))


@eqx.filter_jit
def _ratio(batch_loss, params, batch):
    """g_B^T H_B g_B / |g_B|^2 (NaN where g_B = 0)."""
    flat_loss, theta, _ = flatten_loss(lambda p: batch_loss(p, batch), params)
    g, hg = jax.jvp(jax.grad(flat_loss), (theta,), (jax.grad(flat_loss)(theta),))
    gg = g @ g
    return jnp.where(gg > 0, (g @ hg) / jnp.where(gg > 0, gg, 1), jnp.nan)
