r"""Per-block curvature: which block of the parameters is sharp.

The parameters' pytree is cut into blocks: its top-level entries (a dict's keys, a list's or tuple's
positions, a module's fields), or a user's ``groups`` of them. With S_b the columns of the identity that
pick block b's parameters, the block's Hessian is the diagonal block

.. math:: H_{bb} = S_b^T H S_b = \nabla^2_{\theta_b} E(\theta_b; \theta_{\setminus b}),

the Hessian of the loss in block b's parameters with the others held where they are. So each block's
eigenpairs are :func:`~gdflows.curvature.hessian_eigenpairs` of that restricted loss: Hessian-vector
products whose tangents vanish outside the block, never H or H_bb formed (dense for a small block, as
:func:`~gdflows.curvature.use_dense` decides). By Cauchy interlacing every block's top eigenvalue is at
most the top eigenvalue of H. Each block's trace (:func:`block_traces`) is the trace of H_bb, the same
restricted loss through :func:`~gdflows.curvature.hessian_trace`; the blocks' traces sum to tr H.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax

from gdflows.curvature.eigen import Eigenpairs, hessian_eigenpairs
from gdflows.curvature.spectrum import TraceEstimate, hessian_trace
from gdflows.errors import GDFlowsError
from gdflows.params import is_flat

__all__ = ["block_names", "block_eigenpairs", "block_traces"]


def _name(key) -> str:
    """The display name of a top-level path entry: a dict key, a position or a field name."""
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _leaves_by_block(params) -> tuple[list, object, dict[str, list[int]]]:
    """(leaves, treedef, top-level name -> indices of its leaves)."""
    if is_flat(params):
        raise GDFlowsError("params is one flat array, which has no blocks; pass the pytree the loss takes")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    blocks: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(with_path):
        blocks.setdefault(_name(path[0]), []).append(i)
    return [leaf for _, leaf in with_path], treedef, blocks


def block_names(params) -> list[str]:
    """The names of ``params``' top-level entries, in the pytree's order (what ``groups`` may name)."""
    return list(_leaves_by_block(params)[2])


def _grouped(blocks: dict[str, list[int]], groups: Mapping[str, Sequence[str]] | None) -> dict[str, list[int]]:
    """Leaf indices per group (default: one group per top-level entry); unknown or repeated names refused."""
    if groups is None:
        return blocks
    seen: dict[str, str] = {}
    out = {}
    for group, names in groups.items():
        if isinstance(names, str) or not names:
            raise GDFlowsError(f"group {group!r} must list top-level entries, e.g. [{next(iter(blocks))!r}]")
        for name in names:
            if name not in blocks:
                raise GDFlowsError(f"group {group!r} names {name!r}, not a top-level entry of params: {list(blocks)}")
            if name in seen:
                raise GDFlowsError(f"{name!r} is in both groups {seen[name]!r} and {group!r}; put it in one")
            seen[name] = group
        out[group] = sorted(i for name in names for i in blocks[name])
    return out


def _restricted_losses(loss: Callable, params, groups) -> dict[str, tuple[Callable, tuple, int]]:
    """Per block: (the loss of its leaves with the others held, its leaves, its parameter count)."""
    leaves, treedef, blocks = _leaves_by_block(params)
    out = {}
    for group, idx in _grouped(blocks, groups).items():

        def restricted(block, idx=idx):
            full = list(leaves)
            for i, leaf in zip(idx, block):
                full[i] = leaf
            return loss(jax.tree_util.tree_unflatten(treedef, full))

        out[group] = restricted, tuple(leaves[i] for i in idx), sum(jax.numpy.size(leaves[i]) for i in idx)
    return out


def block_eigenpairs(
    loss: Callable, params, k: int = 1, groups: Mapping[str, Sequence[str]] | None = None, **eigen
) -> dict[str, Eigenpairs]:
    """The k top eigenpairs of each diagonal block H_bb (see the module docstring), by block name.

    ``groups``: block name -> the top-level entries it joins (:func:`block_names`); default: one block per
    top-level entry. ``eigen``: :func:`~gdflows.curvature.hessian_eigenpairs`' options (``which``, ``tol``,
    ``max_size``, ``method``, ``budget``, ...). Each result's ``vectors`` is a tuple of the block's leaves,
    each with a leading k axis.
    """
    restricted = _restricted_losses(loss, params, groups)
    for group, (_, _, size) in restricted.items():
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= size:
            raise GDFlowsError(
                f"k must be an integer in [1, {size}] (block {group!r} has {size} parameters), got {k!r}"
            )
    return {group: hessian_eigenpairs(f, block, k, **eigen) for group, (f, block, _) in restricted.items()}


def block_traces(
    loss: Callable, params, probes: int = 20, groups: Mapping[str, Sequence[str]] | None = None, **trace
) -> dict[str, TraceEstimate]:
    """tr H_bb of each diagonal block (see the module docstring), by block name, with its standard error.

    ``probes``: :func:`~gdflows.curvature.hessian_trace`'s; a block of at most ``probes`` parameters uses as
    many probes as it has parameters, and XTrace then returns its exact trace. ``trace``: ``method``, ``key``.
    """
    restricted = _restricted_losses(loss, params, groups)
    return {
        group: hessian_trace(f, block, min(probes, size), **trace) for group, (f, block, size) in restricted.items()
    }
