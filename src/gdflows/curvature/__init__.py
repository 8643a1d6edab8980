"""Curvature: Hessian-vector products, dense Hessians, eigenpairs, spectra (density, trace, diagonal), matrix
functions."""

from gdflows.curvature.batch_sharpness import BatchSharpness, batch_sharpness
from gdflows.curvature.blocks import block_eigenpairs, block_names, block_traces
from gdflows.curvature.chunked import ChunkedLoss, chunked_loss, d3_of, grad_of, hvp_of
from gdflows.curvature.eigen import DENSE_MAX_D, Eigenpairs, hessian_eigenpairs, top_eigenpairs, use_dense
from gdflows.curvature.hvp import d3, gradient, hessian, hvp
from gdflows.curvature.spectrum import (
    SpectralDensity,
    TraceEstimate,
    hessian_diagonal,
    hessian_trace,
    spectral_density,
)
from gdflows.curvature.spread import EigenvalueSpread, eigenvalue_spread

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
    "block_traces",
    "top_eigenpairs",
    "use_dense",
    "BatchSharpness",
    "batch_sharpness",
    "EigenvalueSpread",
    "eigenvalue_spread",
    "SpectralDensity",
    "TraceEstimate",
    "spectral_density",
    "hessian_trace",
    "hessian_diagonal",
    "DENSE_MAX_D",
]
