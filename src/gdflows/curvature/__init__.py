"""Curvature: Hessian-vector products, dense Hessians, eigenpairs."""

from gdflows.curvature.hvp import d3, gradient, hessian, hvp

__all__ = ["gradient", "hvp", "d3", "hessian"]
