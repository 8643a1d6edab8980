r"""The spread of a top-eigenvalue estimate over the data: is the sample large enough?

The Hessian of a loss over n examples is the mean of per-example Hessians, so its top eigenvalues are an
estimate that varies with the sample. :func:`eigenvalue_spread` cuts the examples into ``subsets``
disjoint parts of equal size (example i goes to part i mod subsets, so class-ordered data stays
balanced), computes the top-k eigenvalues of

.. math:: H_s = \nabla^2 \frac{1}{|S_s|} \sum_{i \in S_s} \ell_i(\theta)

on each, and reports them with their mean and sample standard deviation. A spread that is large beside
the eigenvalue says that a sample of n / subsets examples does not pin it down, and that the full-sample
value deserves a second look (its own spread is roughly this one over sqrt(subsets) when the parts are
exchangeable).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from gdflows.curvature.eigen import hessian_eigenpairs
from gdflows.errors import GDFlowsError
from gdflows.validation import is_integer_in

__all__ = ["EigenvalueSpread", "eigenvalue_spread"]


@dataclasses.dataclass(frozen=True)
class EigenvalueSpread:
    """``values`` (subsets, k): each part's top-k eigenvalues; ``mean``, ``std`` (k,) over the parts (sample
    std); ``subset_size``: examples per part; ``converged`` (subsets,): each Lanczos solve met its tolerance."""

    values: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    subset_size: int
    converged: np.ndarray


def eigenvalue_spread(batch_loss: Callable, params, data, k: int = 1, subsets: int = 4, **eigen) -> EigenvalueSpread:
    """Top-k eigenvalues of the Hessian of ``batch_loss(params, batch)`` on ``subsets`` disjoint parts of
    ``data`` (a pytree of arrays with the examples on the leading axis), see the module. ``eigen``:
    :func:`~gdflows.curvature.hessian_eigenpairs`' options (``tol``, ``max_size``, ``method``, ...)."""
    leaves = jax.tree_util.tree_leaves(data)
    n = {np.shape(leaf)[0] for leaf in leaves}
    if len(n) != 1:
        raise GDFlowsError(f"data's arrays must share their leading (example) axis, got lengths {sorted(n)}")
    (n,) = n
    if not is_integer_in(subsets, 2, n):
        raise GDFlowsError(f"subsets must be an integer in [2, {n}] (the examples), got {subsets!r}")
    size = n // subsets
    rows = []
    for s in range(subsets):
        part = jax.tree_util.tree_map(lambda a, s=s: a[s : size * subsets : subsets], data)
        rows.append(hessian_eigenpairs(lambda p, part=part: batch_loss(p, part), params, k, **eigen))
    values = np.stack([np.asarray(r.values).real for r in rows])
    return EigenvalueSpread(
        values=values,
        mean=values.mean(axis=0),
        std=values.std(axis=0, ddof=1),
        subset_size=size,
        converged=np.asarray([bool(r.converged) for r in rows]),
    )
