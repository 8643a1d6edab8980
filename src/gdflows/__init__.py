"""gdflows: continuous-time models of gradient descent.

The Principal Flow of Rosca, Wu, Qin & Dherin (TMLR 2023) and the flows it is
compared with, its stability coefficients, integration over GD steps,
edge-of-stability diagnostics and the drift-adjusted learning rate (DAL).

Importing gdflows changes no JAX setting: functions compute in the dtype of
their inputs. For float64, the precision behind gdflows' accuracy claims,
call ``jax.config.update("jax_enable_x64", True)`` before creating arrays.
The theory: docs/theory.md.
"""

from gdflows import flows
from gdflows.diagnosis import Diagnosis, diagnose
from gdflows.gd import gd
from gdflows.integrate import FlowSolution, Status, integrate  # the function shadows the module name on purpose
from gdflows.params import flatten_loss
from gdflows.stability import regime, stability_coefficients

__all__ = [
    "gd",
    "integrate",
    "FlowSolution",
    "Status",
    "flows",
    "diagnose",
    "Diagnosis",
    "flatten_loss",
    "stability_coefficients",
    "regime",
]
__version__ = "0.1.0"
