"""Timed calls of a function compiled ahead of time, shared by the benchmarks."""

from __future__ import annotations

import statistics
import time

import jax


def timed_compiled(jitted, *args, repeats: int = 1):
    """(output, seconds, compiled) of ``jitted(*args)``, compiled first (AOT) so the
    seconds are the run alone: the median over ``repeats`` calls. ``compiled``
    gives XLA's cost analysis."""
    compiled = jitted.lower(*args).compile()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        seconds.append(time.perf_counter() - start)
    return out, statistics.median(seconds), compiled
