"""A model is a pair of pure functions: ``init(key) -> params``, ``apply(params, x) -> logits``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Model(NamedTuple):
    init: Callable  # key -> params pytree
    apply: Callable  # (params, x (N, H, W, C)) -> logits (N, num_classes)
    name: str
