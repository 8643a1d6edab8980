"""Finding one optimizer's state inside the state of any optax chain (e.g. DAL's, whose h is the rate it took)."""

from __future__ import annotations

import jax


def states_of(opt_state, kind) -> list:
    """The nodes of ``opt_state`` that are instances of ``kind`` (a class or a tuple of classes), in tree order.

    Works through any nesting optax builds (``chain``, ``inject_hyperparams``,
    ``named_chain``, ``with_extra_args_support``...); traceable.
    """
    is_kind = lambda node: isinstance(node, kind)  # noqa: E731
    return [s for s in jax.tree_util.tree_leaves(opt_state, is_leaf=is_kind) if is_kind(s)]
