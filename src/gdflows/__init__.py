"""gdflows: continuous-time models of gradient descent.

The Principal Flow of Rosca, Wu, Qin & Dherin (TMLR 2023) and the flows it is
compared with, its stability coefficients, integration over GD steps,
edge-of-stability diagnostics and the drift-adjusted learning rate (DAL).

Importing gdflows enables float64 in JAX (see ``gdflows._x64``).
"""

from gdflows import _x64  # noqa: F401  (must run before arrays are made)
from gdflows import flows
from gdflows.gd import gd
from gdflows.integrate import FlowSolution, integrate  # the function shadows the module name on purpose
from gdflows.params import flatten_loss
from gdflows.stability import regime, stability_coefficients

__all__ = ["gd", "integrate", "FlowSolution", "flows", "flatten_loss", "stability_coefficients", "regime"]
__version__ = "0.1.0"
