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
(``lanczos.run`` supports blocks) costs k HVPs per Krylov step instead of
one. ``hvps`` reports the HVP count either way.

Dense or Lanczos. Below :data:`DENSE_MAX_D` parameters forming the Hessian
(D HVPs) and ``eigh`` is exact and cheaper than a Krylov solve; above it only
Lanczos scales. :func:`use_dense` is the one place that decides, for every
top-eigenpair computation in gdflows (the PF, the central flow, the
diagnosis, the optimizer experiments).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature import lanczos
from gdflows.curvature.operator import hessian_operator
from gdflows.errors import GDFlowsError
from gdflows.params import flatten_loss, is_flat, ravel_rows, unravel_rows
from gdflows.validation import default_tol, is_integer_in

WHICH = ("LA", "SA")
METHODS = ("auto", "dense", "lanczos")  # how eigenpairs (and the PF field) are computed: one name per method
DENSE_MAX_D = 256  # "auto": a dense Hessian and eigh up to this D, Lanczos above


def check_eigen_args(dim: int, k, method: str, max_size: int | None) -> int:
    """Raise with the fix for a bad ``k`` or ``method`` of a D = ``dim`` eigenproblem; return ``max_size``
    (default ``min(D, max(100, 4k))``)."""
    if method not in METHODS:
        raise GDFlowsError(f"method must be one of {METHODS}, got {method!r}")
    if not is_integer_in(k, 1, dim):
        raise GDFlowsError(f"k must be an integer in [1, D = {dim}], got {k!r}")
    return min(dim, max(100, 4 * k)) if max_size is None else int(max_size)


def use_dense(dim: int, method: str = "auto") -> bool:
    """Whether eigenpairs of a D = ``dim`` Hessian are computed densely (see the module docstring)."""
    return method == "dense" or (method == "auto" and dim <= DENSE_MAX_D)


class Eigenpairs(eqx.Module):
    """k eigenpairs: values (k,), vectors (k, D) as rows, residual norms (k,), HVPs used, whether the residuals
    reached tol, and whether the HVPs applied a linearisation kept in memory
    (:func:`gdflows.curvature.operator.hessian_operator`)."""

    values: jax.Array
    vectors: jax.Array
    residuals: jax.Array
    hvps: jax.Array
    converged: jax.Array
    linearized: bool = eqx.field(static=True, default=False)


def _order(ritz: lanczos.Ritz, which: str):
    """Indices of the Ritz pairs from the wanted end first; invalid ones last."""
    key = -ritz.values.real if which == "LA" else ritz.values.real
    return jnp.argsort(jnp.where(ritz.valid, key, jnp.inf))


def _converged(ritz: lanczos.Ritz, wanted, tol: float):
    scale = jnp.max(jnp.where(ritz.valid, jnp.abs(ritz.values), 0))
    return jnp.all(ritz.valid[wanted] & (ritz.residuals[wanted] <= tol * scale))


def eigsh(
    matvec: Callable, block, k: int, which: str = "LA", tol: float = 1e-8, max_size: int = 100, key=None
) -> Eigenpairs:
    """k extreme eigenpairs of the symmetric (or complex-symmetric) operator ``matvec``.

    Traceable (call it under ``jit``); ``block`` (b, D) spans the start
    subspace. See the module docstring for ``which`` and ``tol``.
    """
    key = jax.random.PRNGKey(0) if key is None else key

    def monitor(size, ritz, _):
        return (size >= k) & _converged(ritz, _order(ritz, which)[:k], tol), None

    def readout(ritz, _):
        return ritz.vectors[:, _order(ritz, which)[:k]]

    vectors, size, ritz, _ = lanczos.run(matvec, block, max_size, monitor, None, key, readout)
    wanted = _order(ritz, which)[:k]
    return Eigenpairs(
        values=ritz.values[wanted],
        vectors=vectors,
        residuals=ritz.residuals[wanted],
        hvps=size,
        converged=(size >= k) & _converged(ritz, wanted, tol),
    )


def dense_eigenpairs(loss: Callable, theta, k: int, which: str = "LA", budget: int | None = None) -> Eigenpairs:
    """k extreme eigenpairs from the dense Hessian (traceable; small D), its D columns H e_j from
    :func:`~gdflows.curvature.operator.hessian_operator` (``budget``: its memory budget).

    Real theta: ``eigh``. Complex theta (complex-symmetric H): ``eig``, vectors
    normalised in the bilinear form u^T u = 1, ordered by real part.
    """
    op = hessian_operator(loss, theta, budget)
    H = jax.vmap(op.matvec)(jnp.eye(theta.shape[0], dtype=theta.dtype))
    if jnp.iscomplexobj(H):
        values, vectors = jnp.linalg.eig(H)
        vectors = vectors / jnp.sqrt(jnp.sum(vectors * vectors, axis=0))
    else:
        values, vectors = jnp.linalg.eigh(H)
    order = jnp.argsort(-values.real if which == "LA" else values.real)[:k]
    values, vectors = values[order], vectors[:, order].T
    residuals = jnp.linalg.norm(vectors @ H - values[:, None] * vectors, axis=1)
    return Eigenpairs(values, vectors, residuals, jnp.asarray(theta.shape[0]), jnp.asarray(True), op.linearized)


def top_eigenpairs(
    loss: Callable,
    theta,
    k: int,
    which: str = "LA",
    tol: float = 1e-8,
    max_size: int | None = None,
    method: str = "auto",
    block=None,
    key=None,
    budget: int | None = None,
) -> Eigenpairs:
    """k extreme eigenpairs of H(theta), dense or by Lanczos (:func:`use_dense`); traceable.

    No validation and no warning: call :func:`hessian_eigenpairs` from user code.
    ``block`` (b, D) starts Lanczos (default: one random vector from ``key``). The HVPs apply
    grad E linearised at theta once when its residuals fit ``budget`` bytes (default: a quarter of the
    device's memory; 0: recompute at every product), see :mod:`gdflows.curvature.operator`.
    """
    dim = theta.shape[0]
    if use_dense(dim, method):
        return dense_eigenpairs(loss, theta, k, which, budget)
    key = jax.random.PRNGKey(0) if key is None else key
    block = _start_block(None, theta, key) if block is None else block
    max_size = min(dim, max(100, 4 * k)) if max_size is None else max_size
    op = hessian_operator(loss, theta, budget)
    pairs = eigsh(op.matvec, block, k, which, tol, max_size, key)
    return dataclasses.replace(pairs, linearized=op.linearized)


_top_eigenpairs_jit = eqx.filter_jit(top_eigenpairs)


def hessian_eigenpairs(
    loss: Callable,
    params,
    k: int,
    which: str = "LA",
    tol: float | None = None,
    max_size: int | None = None,
    warm_start=None,
    key=None,
    method: str = "auto",
    budget: int | None = None,
) -> Eigenpairs:
    """k extreme eigenpairs of H(theta) for ``loss`` (any loss; chunked if a ChunkedLoss).

    ``params``: a flat theta (D,) or a pytree (a dict, an equinox module's
    arrays) that ``loss`` takes. For a pytree, H acts on its leaves laid end to
    end (:func:`gdflows.params.ravel`) and ``vectors`` comes back as that pytree
    with a leading k axis on every leaf (u_i is ``tree_map(lambda x: x[i],
    vectors)``); for a flat theta it is an array (k, D).
    ``method``: "dense", "lanczos", or "auto" (dense up to D = DENSE_MAX_D).
    ``warm_start``: a previous :class:`Eigenpairs`, an array (b, D), or a pytree
    with a leading b axis; the (normalised) sum of those vectors starts
    Lanczos; otherwise one random vector (``key``).
    ``max_size``: largest basis (HVP budget), default ``min(D, max(100, 4k))``.
    ``tol``: relative residual, by default what theta's dtype resolves
    (:func:`gdflows.validation.default_tol`: 1e-8 in float64, 1.2e-5 in float32).
    ``budget``: bytes the HVPs may keep of grad E's linearisation at theta (default: a quarter of the
    device's memory; 0: recompute at every product; :mod:`gdflows.curvature.operator`); ``linearized``
    in the result says which was used.
    Warns when the residuals did not reach ``tol`` within ``max_size``
    (``converged`` is then False).
    """
    flat_loss, theta, unravel = flatten_loss(loss, params)
    dim = theta.shape[0]
    if which not in WHICH:
        raise GDFlowsError(f"which must be one of {WHICH}, got {which!r}")
    max_size = check_eigen_args(dim, k, method, max_size)
    tol = default_tol(theta.real.dtype) if tol is None else tol
    lanczos.check_krylov_args(dim, max_size, 1, tol, theta.dtype)  # a warm start is summed into one vector
    if max_size < k:
        raise GDFlowsError(f"max_size ({max_size}) must be >= k ({k})")
    if budget is not None and not is_integer_in(budget, 0):
        raise GDFlowsError(f"budget must be an integer number of bytes >= 0 (or None: the default), got {budget!r}")
    result = solve_eigenpairs(flat_loss, theta, k, which, tol, max_size, warm_start, key, method, budget)
    if not bool(result.converged):
        warnings.warn(
            f"Lanczos stopped at max_size = {max_size} HVPs before all {k} residuals reached "
            f"tol = {tol:g} (largest: {float(jnp.max(result.residuals)):.2e}); "
            "raise max_size or tol",
            stacklevel=2,
        )
    if is_flat(params):
        return result
    return eqx.tree_at(lambda e: e.vectors, result, unravel_rows(unravel, result.vectors))


def solve_eigenpairs(
    flat_loss: Callable,
    theta,
    k: int,
    which: str,
    tol: float,
    max_size: int,
    warm_start=None,
    key=None,
    method="auto",
    budget: int | None = None,
) -> Eigenpairs:
    """:func:`hessian_eigenpairs` on a flat theta without its checks and warning: for callers that
    validated their arguments once at their own boundary (e.g. :func:`gdflows.diagnose`)."""
    key = jax.random.PRNGKey(0) if key is None else key
    block = _start_block(warm_start, theta, key)
    tol = jnp.asarray(tol, theta.real.dtype)
    return _top_eigenpairs_jit(flat_loss, theta, int(k), which, tol, int(max_size), method, block, key, budget)


def _start_block(warm_start, theta, key):
    """The start vector (1, D): the sum of the warm-start vectors, or a random one."""
    dtype = jnp.result_type(theta.dtype, jnp.float32)
    if warm_start is None:
        return jax.random.normal(key, (1, theta.shape[0]), theta.real.dtype).astype(dtype)
    vectors = warm_start.vectors if isinstance(warm_start, Eigenpairs) else warm_start
    vectors = ravel_rows(vectors, theta.shape[0], "warm_start vectors")
    unit = vectors / jnp.linalg.norm(vectors, axis=1, keepdims=True)
    # theta's precision (a float64 warm start must not turn a float32 solve's HVP tangents float64);
    # complex only where the warm start is
    target = jnp.result_type(dtype, jnp.complex64) if jnp.iscomplexobj(vectors) else dtype
    return jnp.sum(unit, axis=0, keepdims=True).astype(target)
