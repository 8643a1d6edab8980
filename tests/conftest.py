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
# XLA's CPU backend without LLVM's optimisation passes: about three quarters of the suite's CPU time is XLA
# compiling small programs that then run for milliseconds, and level 0 compiles a Lanczos solve in 2.6 s
# instead of 4.0 s. Results move in the last bits only (no fast-math at any level; every test's tolerance
# is far above that). Set before JAX starts its backend; subprocesses of the tests inherit it.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()


# The slowest files first (their summed durations in `make test`, measured): with --no-loadscope-reorder, xdist
# hands files to its workers in this order, so no long file starts last and runs alone at the end.
SLOWEST = (
    "test_reproduce.py",
    "test_train.py",
    "test_readme.py",
    "test_parallel.py",
    "test_train_scale.py",
    "test_network_problem.py",
    "test_pytrees.py",
    "test_curvature_eigen.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST)))  # stable: the rest keep their order
