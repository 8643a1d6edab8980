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

from gdflows._lazy import lazy_package

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

lazy_package(__name__, _API, _SUBPACKAGES)
