r"""The semidefinite complementarity problem (SDCP) of the central flow, solved by accelerated projection.

For a symmetric k x k matrix C and a positive semidefinite operator Q on
symmetric matrices, find S with

.. math::

    S \succeq 0, \qquad A(S) = C + Q(S) \succeq 0, \qquad \langle S, A(S)\rangle = 0 .

Since Q is PSD these are the optimality conditions of the convex program
:math:`\min_{S \succeq 0} \langle C, S\rangle + \tfrac12 \langle S, Q(S)\rangle`.

Coordinates. A symmetric matrix is stored as ``svec(S)`` (m = k(k+1)/2
entries: the upper triangle, off-diagonal entries times sqrt 2), so that
``<S, T> = svec(S) . svec(T)`` and Q is an m x m PSD matrix.

Method. FISTA (projected gradient with step 1/L, L the largest eigenvalue of
Q, Nesterov momentum and the adaptive restart of O'Donoghue & Candes). Each
iteration costs one m x m product and the projection onto the PSD cone, an
``eigh`` of a k x k matrix. A warm start (the previous solution) is taken as
given. (A Jacobi-like congruence scaling S = D R D was tried and dropped: a
direction with a tiny curvature gradient, inactive anyway, got a huge scale
that slowed the active ones down.)

Stopping rule: the natural residual, in the units of A and relative to a
scale the caller supplies,

.. math:: r(S) = L\, \| S - \Pi_{\succeq 0}(S - A(S)/L) \| \;/\; \text{scale}

vanishes exactly at a solution. The scale
must not count entries of C that only keep S = 0 (the central flow passes
the size of its sharpening rate G, not its large gap terms, which would hide
an unconverged active direction). The solve stops when r <= ``tol`` or after
``max_iter`` iterations and reports r, the iterations used and whether
r <= tol. The scaling D is capped at 10^4 (a direction whose Q_jj is below
1e-8 of the largest is scaled as if at that floor).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class SDCPResult(eqx.Module):
    """svec(S); the natural residual r; FISTA iterations used; r <= tol."""

    s: jax.Array
    residual: jax.Array
    iterations: jax.Array
    converged: jax.Array


def triu_pairs(k: int):
    """Index arrays (i, j), i <= j, of the upper triangle: the svec order (static numpy arrays)."""
    return np.triu_indices(k)


def svec_weights(k: int, dtype):
    """1 on the diagonal entries of svec, sqrt 2 off it."""
    i, j = triu_pairs(k)
    return jnp.asarray(np.where(i == j, 1.0, np.sqrt(2.0)), dtype)


def svec(A):
    """The svec coordinates (m,) of a symmetric k x k matrix."""
    i, j = triu_pairs(A.shape[-1])
    return A[..., i, j] * svec_weights(A.shape[-1], A.dtype)


def smat(s, k: int):
    """The symmetric k x k matrix with svec coordinates s."""
    i, j = triu_pairs(k)
    vals = s / svec_weights(k, s.dtype)
    return jnp.zeros((k, k), s.dtype).at[i, j].set(vals).at[j, i].set(vals)


def psd_part(A):
    """The projection of a symmetric matrix onto the PSD cone: V max(w, 0) V^T."""
    w, V = jnp.linalg.eigh((A + A.T) / 2)
    return (V * jnp.maximum(w, 0)) @ V.T


def _lipschitz(Q):
    return jnp.maximum(jnp.linalg.eigvalsh(Q)[-1], jnp.finfo(Q.dtype).tiny)


def residual(C, Q, s, scale, lipschitz=None):
    """The natural residual L |s - Pi(s - a/L)| / scale, a = svec(C) + Q s, L = the largest eigenvalue of Q."""
    lipschitz = _lipschitz(Q) if lipschitz is None else lipschitz
    a = svec(C) + Q @ s
    # Pi is positively homogeneous, so L |s - Pi(s - a/L)| = |L s - Pi(L s - a)|: finite when Q = 0
    # (no third derivative), where S = 0 solves exactly iff C >= 0.
    moved = svec(psd_part(smat(lipschitz * s - a, C.shape[0])))
    return jnp.linalg.norm(lipschitz * s - moved) / scale


def solve_sdcp(C, Q, S0, tol: float, max_iter: int, scale) -> SDCPResult:
    """S >= 0 with C + Q(S) >= 0 and <S, C + Q(S)> = 0 (see the module docstring).

    ``C``, ``S0``: k x k symmetric (S0 is the warm start, projected onto the
    cone first); ``Q``: (m, m) PSD in svec coordinates; ``scale`` > 0: the
    residual's unit. Traceable.
    """
    k = C.shape[0]
    c = svec(C)
    lipschitz = _lipschitz(Q)

    def project(s):
        return svec(psd_part(smat(s, k)))

    def cond(state):
        _, _, _, it, r_norm = state
        return (it < max_iter) & (r_norm > tol)

    def body(state):
        x, y, t, it, _ = state
        x_new = project(y - (c + Q @ y) / lipschitz)
        t_new = (1 + jnp.sqrt(1 + 4 * t**2)) / 2
        restart = jnp.dot(y - x_new, x_new - x) > 0
        y_new = jnp.where(restart, x_new, x_new + ((t - 1) / t_new) * (x_new - x))
        t_new = jnp.where(restart, 1.0, t_new)
        return x_new, y_new, t_new, it + 1, residual(C, Q, x_new, scale, lipschitz)

    s0 = project(svec(S0))
    init = (s0, s0, jnp.ones((), C.dtype), jnp.zeros((), jnp.int32), residual(C, Q, s0, scale, lipschitz))
    x, _, _, iters, r_norm = jax.lax.while_loop(cond, body, init)
    return SDCPResult(x, r_norm, iters, r_norm <= tol)
