"""Enable float64 in JAX when gdflows is imported.

The library claims float64 accuracy (the PF follows GD to 1e-9 on quadratics),
which needs ``jax_enable_x64``. It is switched on once, at import, before any
array is created; float32 stays available by passing float32 arrays.
Set ``GDFLOWS_NO_X64=1`` to leave JAX's setting alone.
"""

import os

import jax

if os.environ.get("GDFLOWS_NO_X64") != "1":
    jax.config.update("jax_enable_x64", True)
