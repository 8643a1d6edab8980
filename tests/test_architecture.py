"""The library leaves JAX's settings alone, the package root holds the library only, and the
flow contract is what integrate relies on."""

import ast
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.errors import GDFlowsError
from gdflows.flows import Flow, ngf, principal
from gdflows.integrate import integrate
from gdflows.problems.quadratic import reference_quadratic, reference_theta0
from gdflows.status import Status

PACKAGE = Path(gdflows.__file__).parent

FRESH = """
import jax, jax.numpy as jnp
{pre}
print(jnp.ones(3).dtype, jax.config.jax_enable_x64, jax.random.normal(jax.random.PRNGKey(0), (3,)).tolist())
"""


def _fresh(pre: str) -> str:
    run = subprocess.run([sys.executable, "-c", FRESH.format(pre=pre)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_import_changes_no_jax_setting():
    without = _fresh("")
    with_import = _fresh("import gdflows, gdflows.flows, gdflows.optim, gdflows.curvature, gdflows.experiments.train")
    assert with_import == without
    assert with_import.startswith("float32 False")


def test_package_root_holds_library_modules_only():
    root = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    library = {
        "__init__",
        "_lazy",
        "errors",
        "validation",
        "params",
        "parallel",
        "gd",
        "integrate",
        "central_solver",
        "status",
        "holomorphic",
        "diagnosis",
        "curvature",
        "flows",
        "stability",
        "optim",
        "problems",
        "models",
        "data",
        "experiments",
    }
    assert root == library, root ^ library


def _imports_inside_functions(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines += [n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return lines


def test_no_module_imports_inside_a_function():
    found = {
        str(p.relative_to(PACKAGE)): lines
        for p in PACKAGE.rglob("*.py")
        if (lines := _imports_inside_functions(ast.parse(p.read_text())))
    }
    assert found == {}
    assert _imports_inside_functions(ast.parse("def f():\n    import os\n")) == [2]  # the check can fail


def test_integrate_takes_the_flows_own_step_and_refuses_another():
    loss, theta0 = reference_quadratic(), reference_theta0()
    pf = principal(loss, 0.1)
    with pytest.raises(GDFlowsError, match="differs from the flow's own learning rate 0.1"):
        integrate(pf, theta0, 0.2, steps=3)
    own = integrate(pf, theta0, steps=3)
    same = integrate(pf, theta0, 0.1, 3)
    np.testing.assert_array_equal(own.thetas, same.thetas)
    np.testing.assert_allclose(own.ts, [0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(own.thetas, gdflows.gd(loss, theta0, 0.1, 3), atol=1e-12)


def test_a_flow_without_a_step_needs_lr_and_a_plain_function_is_a_flow():
    loss, theta0 = reference_quadratic(), reference_theta0()
    with pytest.raises(GDFlowsError, match="pass lr="):
        integrate(ngf(loss), theta0, steps=2)
    with pytest.raises(GDFlowsError, match="pass lr="):
        integrate(lambda th, t: -th, theta0, steps=2)
    sol = integrate(lambda th, t: -th, theta0, 0.5, 2)
    np.testing.assert_allclose(sol.thetas[-1], np.exp(-1.0) * np.asarray(theta0), rtol=1e-10)
    assert sol.status is Status.OK and sol.status == "ok"


def test_status_is_an_enumeration_with_messages():
    assert {s.value for s in Status} == {
        "ok",
        "nonfinite",
        "max_steps",
        "solver_failed",
        "field_not_converged",
        "not_converged",
        "subspace_too_small",
    }
    assert all(len(s.message) > 20 for s in Status)
    loss, theta0 = reference_quadratic(), reference_theta0()
    stalled = integrate(ngf(loss), theta0, 0.5, 20, max_steps=3)
    assert stalled.status is Status.MAX_STEPS and "max_steps" in stalled.status.message


def test_flow_base_is_abstract():
    class NoField(Flow):
        loss: object = None
        lr: object = None

    with pytest.raises(TypeError):
        NoField()


def test_float32_defaults_and_a_tolerance_below_its_resolution_is_refused():
    loss = reference_quadratic()
    theta32 = jnp.asarray(reference_theta0(), jnp.float32)
    sol = integrate(ngf(loss), theta32, 0.5, 3)
    assert sol.thetas.dtype == np.float32 and sol.status is Status.OK
    exact = np.exp(-np.outer(sol.ts, [2.0, 0.02])) * np.asarray(theta32, np.float64)
    np.testing.assert_allclose(sol.thetas, exact, rtol=1e-4)
    with pytest.raises(GDFlowsError, match="float64"):
        integrate(ngf(loss), theta32, 0.5, 3, rtol=1e-10)


def _imported_modules(path: Path) -> set[str]:
    """The modules a file imports (``from a.b import c`` gives a.b and a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_problems_sit_below_the_flows_the_diagnosis_and_the_optimizers():
    """A problem is data and a loss: the tools that use it (flows, diagnose, optax) sit above it."""
    forbidden = ("gdflows.flows", "gdflows.diagnosis", "gdflows.integrate", "gdflows.experiments", "optax")
    imports = {str(p.relative_to(PACKAGE)): _imported_modules(p) for p in (PACKAGE / "problems").rglob("*.py")}
    bad = {
        f: sorted(m for m in mods if m.split(".")[0] == "optax" or m.startswith(forbidden))
        for f, mods in imports.items()
    }
    assert {f: m for f, m in bad.items() if m} == {}
    assert "optax" in _imported_modules(PACKAGE / "experiments" / "steps.py")  # the check sees optax imports


def _scans_over_steps(source: str) -> list[str]:
    """The functions in ``source`` that call ``jax.lax.scan`` and an optimizer's ``update`` (a step scan)."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {ast.unparse(n.func) for n in ast.walk(fn) if isinstance(n, ast.Call)}
            if "jax.lax.scan" in names and any(n.endswith(".update") for n in names):
                found.append(fn.name)
    return found


def test_there_is_exactly_one_step_scan_and_every_training_command_takes_its_steps_there():
    scans = sorted(
        f"{p.relative_to(PACKAGE)}:{name}" for p in PACKAGE.rglob("*.py") for name in _scans_over_steps(p.read_text())
    )
    assert scans == ["experiments/steps.py:step_scan"]
    # train, both compare-optimizers scales, and (through gdflows.experiments.train) demo; eos-conv runs train configs
    trainers = {t: _imported_modules(PACKAGE / "experiments" / t) for t in ("train.py", "demo.py")}
    trainers["optimizers/compare.py"] = _imported_modules(PACKAGE / "experiments" / "optimizers" / "compare.py")
    assert all("gdflows.experiments.steps" in m or "gdflows.experiments.train" in m for m in trainers.values())
    # and one driver: every command that trains runs its logged intervals through gdflows.experiments.driver
    assert all("gdflows.experiments.driver" in trainers[t] for t in ("train.py", "optimizers/compare.py"))
    # the check can fail: a second scan over an optimizer's update is found
    other = "import jax\ndef other(opt, s, g):\n    return jax.lax.scan(lambda c, x: opt.update(x, c), s, g)\n"
    assert _scans_over_steps(other) == ["other"]
