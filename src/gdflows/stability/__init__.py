"""Stability coefficients sc_i, regimes, and edge-of-stability diagnostics."""

from gdflows.stability.coefficients import REGIMES, log_star, regime, stability_coefficients
from gdflows.stability.diagnose import Diagnosis, diagnose

__all__ = ["stability_coefficients", "regime", "log_star", "REGIMES", "diagnose", "Diagnosis"]
