"""What a run's numbers depend on besides its config: gdflows' own source and the numerical stack.

A run folder that records :func:`software` is refused, not resumed, by code that
would compute other numbers (no JAX import here: it runs before a command loads).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

STACK = ("jax", "jaxlib", "numpy", "optax", "diffrax")


def software() -> dict[str, str]:
    """A SHA-256 of gdflows' ``*.py`` files (names and bytes) and the versions of :data:`STACK`."""
    package = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return {
        "gdflows_source_sha256": digest.hexdigest(),
        **{name: importlib.metadata.version(name) for name in STACK},
    }
