"""The suite checks float64 claims: switch float64 on explicitly, as a user would.

(gdflows itself leaves JAX's settings alone; tests/test_no_global_state.py checks that.)
"""

import jax

jax.config.update("jax_enable_x64", True)
