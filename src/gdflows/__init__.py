"""gdflows: continuous-time models of gradient descent.

The Principal Flow of Rosca, Wu, Qin & Dherin (TMLR 2023) and the flows it is
compared with, its stability coefficients, integration over GD steps,
edge-of-stability diagnostics and the drift-adjusted learning rate (DAL).

Importing gdflows changes no JAX setting: functions compute in the dtype of
their inputs. For float64, the precision behind gdflows' accuracy claims,
call ``jax.config.update("jax_enable_x64", True)`` before creating arrays.
The theory: docs/theory.md.

The names below load on first use, so ``import gdflows`` (and the command
line's ``--help``) does not import JAX until something needs it.
"""

import importlib
import sys
import types

# public name -> module that defines it
_API = {
    "gd": "gdflows.gd",
    "integrate": "gdflows.integrate",
    "FlowSolution": "gdflows.integrate",
    "Status": "gdflows.status",
    "solve_central": "gdflows.central_solver",
    "CentralSolution": "gdflows.central_solver",
    "diagnose": "gdflows.diagnosis",
    "Diagnosis": "gdflows.diagnosis",
    "flatten_loss": "gdflows.params",
    "stability_coefficients": "gdflows.stability",
    "regime": "gdflows.stability",
}
_SUBPACKAGES = ("flows",)

__all__ = [
    "gd",
    "integrate",
    "FlowSolution",
    "Status",
    "solve_central",
    "CentralSolution",
    "flows",
    "diagnose",
    "Diagnosis",
    "flatten_loss",
    "stability_coefficients",
    "regime",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``gdflows.integrate`` is the function: importing the module of that name must not rebind it."""

    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
