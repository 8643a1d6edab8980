"""Curvature: Hessian-vector products, dense Hessians, eigenpairs, matrix functions."""

from gdflows.curvature.blocks import block_eigenpairs, block_names
from gdflows.curvature.chunked import ChunkedLoss, chunked_loss, d3_of, grad_of, hvp_of
from gdflows.curvature.eigen import DENSE_MAX_D, Eigenpairs, hessian_eigenpairs, top_eigenpairs, use_dense
from gdflows.curvature.hvp import d3, gradient, hessian, hvp

__all__ = [
    "gradient",
    "hvp",
    "d3",
    "hessian",
    "ChunkedLoss",
    "chunked_loss",
    "grad_of",
    "hvp_of",
    "d3_of",
    "Eigenpairs",
    "hessian_eigenpairs",
    "block_eigenpairs",
    "block_names",
    "top_eigenpairs",
    "use_dense",
    "DENSE_MAX_D",
]
