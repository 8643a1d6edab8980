r"""Block Lanczos with full reorthogonalisation, in the bilinear form x^T y.

Starting from a block of b vectors, the process builds rows q_0, q_1, ... of
a basis Q (one block of b rows per step, b HVPs per step) with

.. math::

    Q Q^T = I, \qquad H Q_n^T = Q_n^T T_n + Q_{\rm next}^T R_n ,

where Q_n holds the n rows whose products H q_j are known, T_n = Q_n H Q_n^T
is the projected matrix and R_n couples them to the next block. Each new
vector is orthogonalised against every earlier one twice (classical
Gram-Schmidt, "twice is enough"), so no spurious copies of converged
eigenvalues appear.

Complex states. At a complex parameter vector the Hessian of a holomorphic
loss is complex-symmetric (H^T = H), not Hermitian. Its eigenvectors are
orthogonal under the bilinear form x^T y, so every inner product here is
``x @ y`` without conjugation (complex-symmetric Lanczos); T is then
complex-symmetric and is diagonalised by ``eig``. On real inputs this is
ordinary symmetric Lanczos. A complex vector with q^T q close to 0 and
|q| not small (a "serious breakdown") is not handled specially; it does not
arise for the small imaginary parts of a PF state.

Ritz pairs. For T_n s = theta s (s^T s = 1), y = Q_n^T s approximates an
eigenpair with residual norm |H y - theta y| = |R_n s| (exact when Q is real).

Everything runs in ``lax.while_loop``s with static shapes, in stages: the
basis has room for 16 rows, then 128, 1024, ... up to ``max_size``; a stage
that fills up copies its rows into the next one's larger basis (under
``lax.cond``, so a solve that stops early never touches the larger ones). A run
that needs 13 HVPs thus writes a 17-row basis, not a ``max_size``-row one: on a
CPU, first touching a fresh 47 MB basis (D = 118k, 100 rows, float32) costs
about three HVPs (``benchmarks/hvp_paths.py``). Stages grow eightfold because
each compiles its own copy of the HVP and of the steps: with 16, 32, 64, 100
a solve took 5.1 s to compile against 3.7 s with 16, 100 (298 parameters).
The Ritz problem at size n is the problem of the stage's size with the unused part replaced by a decoupled
diagonal (a "sentinel" above the spectrum) whose eigenpairs are recognised
and dropped, padded to ``max_size``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.errors import GDFlowsError
from gdflows.validation import check_tol


class Krylov(eqx.Module):
    """The Lanczos basis and projected matrix after ``size`` HVPs.

    basis: (capacity + b, D); rows [0, size) are Q_n, rows [size, size + b)
    the next block, the rest zero (capacity: the current stage's, see the module).
    proj: the matching square T, with the coupling R_n in rows [size, size + b). block: b.
    floor: the capacity of the stage before (the basis holds more rows than that), so that no branch is
    compiled for fewer rows than the stage can hold.
    """

    basis: jax.Array
    proj: jax.Array
    size: jax.Array
    block: int = eqx.field(static=True)
    floor: int = eqx.field(static=True, default=0)


class Ritz(NamedTuple):
    """Ritz pairs of T_n, padded to max_size; ``valid`` marks the real ones.

    vectors: (max_size, max_size) columns s with s^T s = 1 (coefficients in Q);
    first: S^{-1} e_1, the coordinates of q_0 in the Ritz basis;
    residuals: |R_n s|, the residual norm of each Ritz pair.
    """

    values: jax.Array
    vectors: jax.Array
    first: jax.Array
    valid: jax.Array
    residuals: jax.Array


def _project_out(basis, w):
    """w - Q^T (Q w) (one classical Gram-Schmidt pass); returns the result and the coefficients Q w."""
    coef = basis @ w
    return w - coef @ basis, coef


def _orthogonalise(basis, w):
    """w - Q^T (Q w), twice; returns the result and the total coefficients Q w."""
    w, c1 = _project_out(basis, w)
    w, c2 = _project_out(basis, w)
    return w, c1 + c2


def _orthogonalise_filled(basis, w, rows, window: int, floor: int = 0):
    r""":func:`_orthogonalise` against the first ``rows`` rows of ``basis`` (the rest are zero), with the first
    pass on the last ``window`` filled rows only.

    In exact arithmetic H q_j has components only along the blocks next to q_j (the three-term recurrence),
    so a pass over the last ``window`` = 3b rows removes every large component; what is left along the older
    rows is rounding (loss of orthogonality), which one pass over all filled rows removes: two passes, as
    :func:`_orthogonalise`, but the first costs 3b rows instead of n. The full pass runs on the smallest
    leading block of :func:`_bucket_sizes` (from 8 rows) that holds the filled rows, so a step's cost follows
    the basis built so far; blocks no larger than ``floor`` (rows a stage starts with) are never compiled.
    The coefficients are returned over the full basis.
    """
    total = basis.shape[0]
    start = jnp.maximum(rows - window, 0)
    recent = jax.lax.dynamic_slice_in_dim(basis, start, min(window, total), axis=0)
    w, local = _project_out(recent, w)
    coef = jax.lax.dynamic_update_slice_in_dim(jnp.zeros(total, w.dtype), local, start, axis=0)
    sizes = _stage_sizes(total, floor, smallest=8, margin=window // 3)

    def leading(w, p):
        out, c = _project_out(basis[:p], w)
        return out, jnp.pad(c, (0, total - p))

    branches = [functools.partial(leading, p=p) for p in sizes]
    w, full = jax.lax.switch(jnp.searchsorted(jnp.asarray(sizes), rows), branches, w)
    return w, coef + full


def _bilinear_norm(w):
    """sqrt(w^T w): the 2-norm for real w, the complex-symmetric norm for complex w."""
    return jnp.sqrt(w @ w)


def _next_vector(basis, w, key, rows, window, floor: int = 0):
    """Orthonormalise w against the rows of ``basis`` (only the first ``rows`` are non-zero; see
    :func:`_orthogonalise_filled` for ``window``): returns (q, Q w, norm).

    On breakdown (w in the span already: an invariant subspace was found) q is
    a fresh random direction and norm is 0, so the coupling it records is 0.
    """
    scale = jnp.linalg.norm(w)
    w, coef = _orthogonalise_filled(basis, w, rows, window, floor)
    norm = _bilinear_norm(w)
    broke = jnp.abs(norm) <= 1e3 * jnp.finfo(basis.real.dtype).eps * scale
    q = jax.lax.cond(broke, _fresh_direction, lambda *_: w / norm, basis, key)
    return q, coef, jnp.where(broke, 0, norm)


def _fresh_direction(basis, key):
    """A pseudo-random unit vector orthogonal to the rows of ``basis`` (only built on breakdown: it costs as
    much as the reorthogonalisation itself). Its entries, frac(43758.5453 sin(12.9898 i + s)) - 1/2 with s
    from ``key``, are a hash of their index rather than ``jax.random``'s draws: threefry compiles in about
    0.1 s, paid in every stage of every solve for a branch that rarely runs."""
    real = basis.real.dtype
    seed = jnp.sum(jax.random.key_data(key).astype(real) * jnp.asarray([1.0, 0.618], real))
    fresh = 43758.5453 * jnp.sin(12.9898 * jnp.arange(basis.shape[1], dtype=real) + seed)
    fresh = (fresh - jnp.floor(fresh) - 0.5).astype(basis.dtype)
    fresh = _orthogonalise(basis, fresh)[0]
    return fresh / _bilinear_norm(fresh)


def _append_block(krylov: Krylov, products, key) -> Krylov:
    """Add the columns H q_j (j in the current block) to T and the next block to Q."""
    basis, proj, n, b = krylov.basis, krylov.proj, krylov.size, krylov.block
    for i in range(b):
        q, coef, norm = _next_vector(basis, products[i], jax.random.fold_in(key, i), n + b + i, 3 * b, krylov.floor)
        basis = basis.at[n + b + i].set(q)
        proj = proj.at[:, n + i].set(coef.at[n + b + i].set(norm))
    cols = jax.lax.dynamic_slice_in_dim(proj, n, b, axis=1)
    proj = jax.lax.dynamic_update_slice_in_dim(proj, cols.T, n, axis=0)
    diag = jax.lax.dynamic_slice(proj, (n, n), (b, b))
    proj = jax.lax.dynamic_update_slice(proj, (diag + diag.T) / 2, (n, n))
    return Krylov(basis, proj, n + b, b, krylov.floor)


def start(block, capacity: int, key) -> Krylov:
    """An empty Krylov process with room for ``capacity`` rows, whose first block spans the rows of ``block`` (b, D)."""
    b, dim = block.shape
    basis = jnp.zeros((capacity + b, dim), block.dtype)
    for i in range(b):
        basis = basis.at[i].set(_next_vector(basis, block[i], jax.random.fold_in(key, i), i, b)[0])
    return Krylov(basis, jnp.zeros((capacity + b,) * 2, block.dtype), jnp.asarray(0), b)


def ritz(proj, size, block: int, floor: int = 0) -> Ritz:
    """Ritz pairs of T_n (n = ``size``, T and the coupling R_n in ``proj``) with their residual norms |R_n s|.

    The eigenproblem is solved on the smallest of a few leading sizes
    (32, 64, 128, ..., m; m + b rows in ``proj``) that holds T_n, so early steps
    stay cheap; padded to m; sizes up to ``floor`` (n is larger) are not compiled. It takes T alone, not
    the basis: a branch that carried the (m, D) basis would cost a copy of it at every check.
    """
    m = proj.shape[0] - block
    sizes = _stage_sizes(m, floor)
    index = jnp.searchsorted(jnp.asarray(sizes), size)
    branches = [functools.partial(_ritz_leading, p=p, m=m, b=block) for p in sizes]
    return jax.lax.switch(index, branches, proj, size)


def _bucket_sizes(m: int, smallest: int = 32, ratio: int = 2) -> tuple[int, ...]:
    """``smallest`` times the powers of ``ratio`` below m, then m: the leading sizes a step may work on."""
    return tuple(p for p in (smallest * ratio**e for e in range(31)) if p < m) + (m,)


def _stage_sizes(total: int, floor: int, smallest: int = 32, margin: int = 0) -> tuple[int, ...]:
    """The sizes of :func:`_bucket_sizes` a stage can use: above ``floor`` (the rows it starts with) and, but
    for ``total`` itself, below ``total - margin`` (a branch for all but the last ``margin`` rows would
    serve one step). Each size is a compiled branch: a few tenths of a second of XLA's time apiece."""
    inner = _bucket_sizes(total, smallest)[:-1]
    return tuple(p for p in inner if floor < p < total - margin) + (total,)


def _ritz_leading(proj, n, p: int, m: int, b: int) -> Ritz:
    """Ritz pairs from the leading p x p block (p >= n), padded to m."""
    used = jnp.arange(p) < n
    t = jnp.where(used[:, None] & used[None, :], proj[:p, :p], 0)
    sentinel = 1 + 2 * jnp.max(jnp.sum(jnp.abs(t), axis=1))
    t = t + jnp.diag(jnp.where(used, 0, sentinel)).astype(t.dtype)
    if jnp.iscomplexobj(t):
        values, vectors = jnp.linalg.eig(t)
        vectors = vectors / _safe(jnp.sqrt(jnp.sum(vectors * vectors, axis=0)))
        first = jnp.linalg.solve(vectors, jnp.zeros(p, t.dtype).at[0].set(1))
    else:
        values, vectors = jnp.linalg.eigh(t)
        first = vectors[0]
    weight_used = jnp.sum(jnp.where(used[:, None], jnp.abs(vectors) ** 2, 0), axis=0)
    valid = weight_used > 0.5 * jnp.sum(jnp.abs(vectors) ** 2, axis=0)
    coupling = jax.lax.dynamic_slice_in_dim(proj[:, :p], n, b, axis=0)
    residuals = jnp.where(valid, jnp.linalg.norm(coupling @ vectors, axis=0), jnp.inf)
    return _pad_ritz(Ritz(values, vectors, first, valid, residuals), m)


def _safe(x):
    return jnp.where(x == 0, 1, x)


def run(
    matvec: Callable, block, max_size: int, monitor: Callable, aux: Any, key, readout: Callable
) -> tuple[jax.Array, jax.Array, Ritz, Any]:
    """Grow the Krylov basis one block at a time until ``monitor`` says done.

    ``matvec(v) -> H v``; ``block`` (b, D) is the start block;
    ``monitor(size, ritz, aux) -> (done, aux)`` sees the number of rows n
    and the Ritz pairs of the current basis (padded to ``max_size``). It is
    called after every block up to 32 blocks, then every
    ``2^(floor(log2 j) - 4)`` blocks (j blocks done; about 16 checks per
    doubling, so at most ~6% extra HVPs), when a stage's basis is full, and at
    the end. Stops at ``max_size`` HVPs at the latest (a multiple of b).
    ``readout(ritz, aux) -> C`` (max_size, k) names the vectors wanted from
    the final basis: the result holds Q_n^T C as rows (k, D), the number of
    rows n, the final Ritz pairs and ``aux``.
    """
    b = block.shape[0]
    stages = tuple(s for s in _bucket_sizes(max_size, smallest=16, ratio=8) if s >= b)
    krylov = start(block, stages[0], key)
    shapes = jax.eval_shape(functools.partial(ritz, block=b), jnp.zeros((max_size + b,) * 2, block.dtype), 0)
    pairs = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return _run_stage(stages, matvec, krylov, pairs, aux, jnp.asarray(False), monitor, readout, max_size, key)


def _run_stage(stages, matvec, krylov: Krylov, pairs, aux, done, monitor, readout, max_size: int, key):
    """Lanczos steps while the basis of capacity ``stages[0]`` has room; then finish, or grow into the next stage."""
    b, capacity = krylov.block, stages[0]

    def check(proj, size, aux):
        pairs = _pad_ritz(ritz(proj, size, b, krylov.floor), max_size)
        done, aux = monitor(size, pairs, aux)
        return pairs, aux, done

    def cond(state):
        krylov, _, _, done = state
        return (~done) & (krylov.size + b <= capacity)

    def body(state):
        krylov, pairs, aux, _ = state
        current = jax.lax.dynamic_slice_in_dim(krylov.basis, krylov.size, b, axis=0)
        products = jax.vmap(matvec)(current)
        krylov = _append_block(krylov, products, jax.random.fold_in(key, krylov.size + 1))
        last = krylov.size + b > capacity
        new_pairs, aux, done = jax.lax.cond(
            _check_now(krylov.size // b) | last,
            check,
            lambda proj, size, a: (pairs, a, jnp.asarray(False)),
            krylov.proj,
            krylov.size,
            aux,
        )
        return krylov, new_pairs, aux, done

    krylov, pairs, aux, done = jax.lax.while_loop(cond, body, (krylov, pairs, aux, done))

    def finish(krylov, pairs, aux):
        coefficients = readout(pairs, aux)[:capacity]
        return coefficients.T @ krylov.basis[:capacity], krylov.size, pairs, aux

    if len(stages) == 1:
        return finish(krylov, pairs, aux)

    def grow(krylov, pairs, aux):
        bigger = _grow(krylov, stages[1])
        return _run_stage(stages[1:], matvec, bigger, pairs, aux, jnp.asarray(False), monitor, readout, max_size, key)

    stop = done | (krylov.size + b > max_size)
    return jax.lax.cond(stop, finish, grow, krylov, pairs, aux)


def _grow(krylov: Krylov, capacity: int) -> Krylov:
    """The same basis and projected matrix in room for ``capacity`` rows (the extra rows zero)."""
    pad = capacity + krylov.block - krylov.basis.shape[0]
    basis = jnp.pad(krylov.basis, ((0, pad), (0, 0)))
    floor = krylov.basis.shape[0] - krylov.block
    return Krylov(basis, jnp.pad(krylov.proj, ((0, pad), (0, pad))), krylov.size, krylov.block, floor)


def _pad_ritz(pairs: Ritz, m: int) -> Ritz:
    """Ritz pairs padded to m (padding: invalid pairs with infinite residuals)."""
    pad = m - pairs.values.shape[0]
    return Ritz(
        values=jnp.pad(pairs.values, (0, pad)),
        vectors=jnp.pad(pairs.vectors, ((0, pad), (0, pad))),
        first=jnp.pad(pairs.first, (0, pad)),
        valid=jnp.pad(pairs.valid, (0, pad)),
        residuals=jnp.pad(pairs.residuals, (0, pad), constant_values=jnp.inf),
    )


def _check_now(steps):
    """Check convergence after every step up to 32, then about 16 times per doubling."""
    stride = jnp.maximum(1, 2 ** (jnp.floor(jnp.log2(jnp.maximum(steps, 1))).astype(jnp.int32) - 4))
    return (steps <= 32) | (steps % stride == 0)


def check_krylov_args(dim: int, max_size: int, block: int, tol: float, dtype) -> None:
    """Raise with the fix for an impossible basis size or tolerance."""
    if block < 1 or max_size < block:
        raise GDFlowsError(f"max_size ({max_size}) must be >= the start block size ({block})")
    if max_size > dim:
        raise GDFlowsError(f"max_size ({max_size}) exceeds the dimension D = {dim}; pass max_size <= {dim}")
    check_tol(tol, dtype)
