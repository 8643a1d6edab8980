"""Stability coefficients sc_i of the Principal Flow and the GD regimes they define.

The bare maths the flows use; the edge-of-stability diagnosis built on the
flows is :func:`gdflows.diagnose`.
"""

from gdflows.stability.coefficients import REGIMES, log_star, pf_components, regime, stability_coefficients

__all__ = ["stability_coefficients", "regime", "log_star", "pf_components", "REGIMES"]
