"""The suite checks float64 claims: switch float64 on explicitly, as a user would.

(gdflows itself leaves JAX's settings alone; tests/test_architecture.py checks that in
test_import_changes_no_jax_setting.)
The command line, run in-process by some tests, would point this process's JAX at the
user's compilation cache; GDFLOWS_NO_CACHE=1 keeps it off (a test that wants the cache
sets its own environment).
"""

import os

import jax

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("GDFLOWS_NO_CACHE", "1")
