r"""Extreme eigenpairs of the Hessian by Lanczos, warm-startable, never forming H.

.. math:: H u_i = \lambda_i u_i, \qquad u_i^T u_j = \delta_{ij}

``which="LA"`` gives the k largest algebraic eigenvalues (lambda_0 largest,
the sharpness first), ``which="SA"`` the k smallest (most negative first).
At a complex state (complex-symmetric H) "largest" means largest real part
and u_i^T u_j is the bilinear form.

Stopping rule: every wanted Ritz pair has residual
``|H y - theta y| <= tol * max |theta|`` (a relative backward error; for a
symmetric H the eigenvalue error is then at most ``residual^2 / gap``).

Warm start. Training runs call this every few steps while the eigenvectors
move slowly: passing the previous result as ``warm_start`` starts Lanczos
from the sum of those vectors, so the first k Krylov vectors already span
the wanted subspace up to its drift. Convergence then starts from that drift
instead of from a random vector; the saving is modest (Lanczos still has to
filter the rest of the spectrum down to ``tol``; measured in
``benchmarks/pf_scale.py``). A block start from the k vectors themselves
(``lanczos.run`` supports blocks) costs k HVPs per step and was slower in our
measurements. ``hvps`` reports the HVP count either way.
"""

from __future__ import annotations

import warnings
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature import lanczos
from gdflows.curvature.chunked import hvp_of
from gdflows.errors import GDFlowsError
from gdflows.validation import check_flat, is_integer_in

WHICH = ("LA", "SA")


class Eigenpairs(eqx.Module):
    """k eigenpairs: values (k,), vectors (k, D) as rows, residual norms (k,)."""

    values: jax.Array
    vectors: jax.Array
    residuals: jax.Array
    hvps: jax.Array
    converged: jax.Array


def _order(ritz: lanczos.Ritz, which: str):
    """Indices of the Ritz pairs from the wanted end first; invalid ones last."""
    key = -ritz.values.real if which == "LA" else ritz.values.real
    return jnp.argsort(jnp.where(ritz.valid, key, jnp.inf))


def _converged(ritz: lanczos.Ritz, wanted, tol: float):
    scale = jnp.max(jnp.where(ritz.valid, jnp.abs(ritz.values), 0))
    return jnp.all(ritz.valid[wanted] & (ritz.residuals[wanted] <= tol * scale))


def eigsh(matvec: Callable, block, k: int, which: str = "LA", tol: float = 1e-8,
          max_size: int = 100, key=None) -> Eigenpairs:
    """k extreme eigenpairs of the symmetric (or complex-symmetric) operator ``matvec``.

    Traceable (call it under ``jit``); ``block`` (b, D) spans the start
    subspace. See the module docstring for ``which`` and ``tol``.
    """
    key = jax.random.PRNGKey(0) if key is None else key

    def monitor(krylov, ritz, _):
        return (krylov.size >= k) & _converged(ritz, _order(ritz, which)[:k], tol), None

    krylov, ritz, _ = lanczos.run(matvec, block, max_size, monitor, None, key)
    wanted = _order(ritz, which)[:k]
    return Eigenpairs(
        values=ritz.values[wanted],
        vectors=lanczos.ritz_vectors(krylov, ritz.vectors[:, wanted]),
        residuals=ritz.residuals[wanted],
        hvps=krylov.size,
        converged=(krylov.size >= k) & _converged(ritz, wanted, tol),
    )


@eqx.filter_jit
def _hessian_eigsh(loss, theta, block, k, which, tol, max_size, key):
    return eigsh(lambda v: hvp_of(loss)(theta, v), block, k, which, tol, max_size, key)


def hessian_eigenpairs(loss: Callable, theta, k: int, which: str = "LA", tol: float = 1e-8,
                       max_size: int | None = None, warm_start=None, key=None) -> Eigenpairs:
    """k extreme eigenpairs of H(theta) for ``loss`` (any loss; chunked if a ChunkedLoss).

    ``warm_start``: a previous :class:`Eigenpairs` or an array (b, D) of
    vectors whose (normalised) sum starts Lanczos; otherwise one random
    vector (``key``).
    ``max_size``: largest basis (HVP budget), default ``min(D, max(100, 4k))``.
    Warns when the residuals did not reach ``tol`` within ``max_size``.
    """
    theta = check_flat(theta, "theta")
    dim = theta.shape[0]
    if which not in WHICH:
        raise GDFlowsError(f"which must be one of {WHICH}, got {which!r}")
    if not is_integer_in(k, 1, dim):
        raise GDFlowsError(f"k must be an integer in [1, D = {dim}], got {k!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    block = _start_block(warm_start, theta, key)
    max_size = min(dim, max(100, 4 * k)) if max_size is None else int(max_size)
    lanczos.check_krylov_args(dim, max_size, block.shape[0], tol, theta.dtype)
    if max_size < k:
        raise GDFlowsError(f"max_size ({max_size}) must be >= k ({k})")
    result = _hessian_eigsh(loss, theta, block, int(k), which, jnp.asarray(tol, theta.real.dtype), max_size, key)
    if not bool(result.converged):
        warnings.warn(
            f"Lanczos stopped at max_size = {max_size} HVPs before all {k} residuals reached "
            f"tol = {tol:g} (largest: {float(jnp.max(result.residuals)):.2e}); "
            "raise max_size or tol",
            stacklevel=2,
        )
    return result


def _start_block(warm_start, theta, key):
    """The start vector (1, D): the sum of the warm-start vectors, or a random one."""
    dtype = jnp.result_type(theta.dtype, jnp.float32)
    if warm_start is None:
        return jax.random.normal(key, (1, theta.shape[0]), theta.real.dtype).astype(dtype)
    vectors = warm_start.vectors if isinstance(warm_start, Eigenpairs) else jnp.asarray(warm_start)
    if vectors.ndim != 2 or vectors.shape[1] != theta.shape[0]:
        raise GDFlowsError(
            f"warm_start vectors must have shape (b, D = {theta.shape[0]}), got {vectors.shape}"
        )
    unit = vectors / jnp.linalg.norm(vectors, axis=1, keepdims=True)
    return jnp.sum(unit, axis=0, keepdims=True).astype(jnp.result_type(dtype, vectors.dtype))
