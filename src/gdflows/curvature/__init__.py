"""Curvature: Hessian-vector products, dense Hessians, eigenpairs, matrix functions."""

from gdflows.curvature.chunked import ChunkedLoss, chunked_loss, d3_of, grad_of, hvp_of
from gdflows.curvature.eigen import Eigenpairs, hessian_eigenpairs
from gdflows.curvature.hvp import d3, gradient, hessian, hvp
from gdflows.curvature.matfun import MatfunResult, hessian_matfun

__all__ = [
    "gradient", "hvp", "d3", "hessian",
    "ChunkedLoss", "chunked_loss", "grad_of", "hvp_of", "d3_of",
    "Eigenpairs", "hessian_eigenpairs",
    "MatfunResult", "hessian_matfun",
]
