"""Stability coefficients sc_i of the Principal Flow, the GD regimes they define, and each optimizer's threshold.

The bare maths the flows use; the edge-of-stability diagnosis built on the
flows is :func:`gdflows.diagnose`.
"""

from gdflows.stability.coefficients import REGIMES, log_star, pf_components, regime, stability_coefficients
from gdflows.stability.thresholds import OPTIMIZER_THRESHOLDS, stability_threshold

__all__ = [
    "stability_coefficients",
    "regime",
    "log_star",
    "pf_components",
    "REGIMES",
    "stability_threshold",
    "OPTIMIZER_THRESHOLDS",
]
