r"""Matrix functions f(H) v by the Lanczos (Krylov) approximation, with an error estimate.

.. math::

    f(H)\, v \approx \beta\, Q_n^T f(T_n)\, e_1, \qquad
    \beta = (v^T v)^{1/2}, \quad q_0 = v / \beta,

where Q_n, T_n come from Lanczos started at v (:mod:`gdflows.curvature.lanczos`)
and ``f(T_n) e_1 = S f(\Theta) S^{-1} e_1`` from the Ritz decomposition
``T_n = S \Theta S^{-1}``. The approximation is exact once the Krylov space
is invariant, and for a function analytic on the spectrum it converges
geometrically; isolated eigenvalues (outliers, or points where f is not
analytic) are resolved as soon as Ritz values converge to them.

A-posteriori error estimate: the change between consecutive approximations,

.. math::

    \mathrm{err}_n = |\beta| \max\big(|y_n - y_{n-1}|, |y_{n-1} - y_{n-2}|\big),
    \qquad y_n = f(T_n) e_1 \ (\text{zero-padded}),

which is exact in norm for real H (Q has orthonormal rows) and an estimate in
the complex-symmetric case (Q^T Q = I, not Q^H Q = I); it is 0 once the
Krylov space is invariant (Lanczos broke down, at the latest at size D). Lanczos stops when
``err_n <= tol * |f(H) v|`` (and an optional extra condition holds).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature import lanczos


class MatfunResult(eqx.Module):
    """f(H) v with its a-posteriori error estimate (absolute, 2-norm) and HVP count."""

    value: jax.Array
    error: jax.Array
    hvps: jax.Array
    converged: jax.Array


def ritz_apply(ritz: lanczos.Ritz, fvals):
    """y = S diag(f(theta)) S^{-1} e_1 over the valid Ritz pairs; padded Ritz pairs add 0."""
    return ritz.vectors @ jnp.where(ritz.valid, fvals * ritz.first, 0)


def matfun(
    matvec: Callable, f: Callable, v, tol: float, max_size: int, accept: Callable | None = None, key=None
) -> tuple[MatfunResult, lanczos.Ritz]:
    """f(H) v for the operator ``matvec``; traceable (use under jit).

    ``f`` maps an array of (Ritz) eigenvalues to f's values elementwise;
    ``accept(ritz) -> bool`` is an extra stopping condition. Returns the
    result and the final Ritz pairs (for the caller to reuse).
    ``v`` must be nonzero.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    beta = lanczos._bilinear_norm(v)
    accept = (lambda ritz: True) if accept is None else accept
    dtype = jnp.result_type(v.dtype, jnp.complex64)

    def monitor(size, ritz, aux):
        y_prev, diff_prev, _, _ = aux
        y = ritz_apply(ritz, f(ritz.values)).astype(dtype)
        diff = jnp.linalg.norm(y - y_prev)
        # an invariant Krylov space (Lanczos broke down: the coupling, hence every residual, is exactly 0,
        # e.g. at size D) makes the approximation exact, whatever the last change was
        invariant = jnp.all(jnp.where(ritz.valid, ritz.residuals, 0) == 0)
        err = jnp.where(invariant, 0, jnp.abs(beta) * jnp.maximum(diff, diff_prev))
        done = (err <= tol * jnp.abs(beta) * jnp.linalg.norm(y)) & accept(ritz)
        return done, (y, diff, err, done)

    inf = jnp.asarray(jnp.inf, jnp.finfo(dtype).dtype)
    aux0 = (jnp.zeros(max_size, dtype), inf, inf, jnp.asarray(False))

    def readout(ritz, aux):
        return aux[0][:, None]

    combined, size, ritz, (_, _, err, done) = lanczos.run(matvec, v[None], max_size, monitor, aux0, key, readout)
    return MatfunResult(beta * combined[0], err, size, done), ritz
