"""FLOPs of a compiled XLA computation, by XLA's own cost analysis (machine-independent)."""

from __future__ import annotations


def flops(compiled) -> float:
    """FLOPs of ``jax.jit(f).lower(...).compile()``; NaN where XLA gives no count."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax: one dict per device
    return float(cost.get("flops", float("nan")))
