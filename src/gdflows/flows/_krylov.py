r"""The Principal Flow field at network scale: Krylov, never a dense Hessian (private;
use ``gdflows.flows.principal(..., method="lanczos")``).

.. math::

    \dot\theta = \sum_i sc_i\, c_i\, u_i = f(H)\, g, \qquad
    f(\lambda) = sc(\lambda) = \frac{\log_\star(1 - h\lambda)}{h\lambda},
    \quad c_i = u_i^T g .

One Lanczos process started at g (:mod:`gdflows.curvature.matfun`) gives

.. math::

    f(H) g \approx \beta\, Q_n^T S f(\Theta) S^{-1} e_1
      = \sum_{\text{outliers}} sc_j\, c_j\, y_j
        + \sum_{\text{bulk}} sc_j\, c_j\, y_j ,

with Ritz pairs (theta_j, y_j) and c_j = y_j^T g. The two sums are the
design's split:

* outliers, Re(h theta_j) > ``threshold`` (default 0.9,
  :data:`gdflows.flows.principal.KRYLOV_THRESHOLD`): the directions at or
  beyond sc's branch point h lambda = 1, where sc is not analytic, and
  those within 10% of it, where a Ritz value still moving could cross it.
  They are found adaptively (as many as the Krylov space reveals) and must
  be exact eigenpairs: Lanczos does not stop before each has relative
  residual <= ``tol``.
* the bulk: every other direction, including negative eigenvalues, where
  sc is analytic; the Ritz sum there is the Lanczos approximation of
  f(H) applied to the gradient deflated of the outliers, and it converges
  geometrically (distance of the bulk from the branch point), under the
  a-posteriori estimate below. A lower threshold buys accuracy nobody
  asked for: at 0.5 the benchmark MLP's field (D = 4,780, tol 1e-7) came
  out 1e-14 accurate after 58 HVPs, at 0.9 1e-10 after 36.

Lanczos stops when both hold and the a-posteriori estimate (change between
consecutive approximations) is <= ``tol * |field|``; the estimate, the HVP
count and the outliers are returned by :meth:`gdflows.flows.Principal.evaluate`.

Complex states: the Hessian is complex-symmetric and Lanczos uses the
bilinear form x^T y (c_j = y_j^T g), as the dense path's U^{-1} g. A state
of complex dtype whose imaginary part is exactly 0 (theta_0, and every state
of a PF with all h lambda < 1) runs in real arithmetic, as the dense path's
``eigh`` branch does: real HVPs, ``eigh`` for the Ritz pairs.

One-step removal: a direction with h lambda exactly 1 has sc = -inf and
contributes 0 (the flow lives on c_i = 0), as in the dense path
(:func:`gdflows.stability.pf_components`). The instantaneous removal
at t = 0+ (the dense path's ``jump``) is not done here; it needs a Ritz value
with h theta exactly 1, which a Krylov method does not produce.

The theory: docs/theory.md, section 6.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gdflows.curvature import lanczos
from gdflows.curvature.matfun import MatfunResult, matfun
from gdflows.curvature.operator import hessian_operator
from gdflows.stability.coefficients import pf_components, stability_coefficients


class KrylovField(NamedTuple):
    """One Krylov evaluation: the field f(H) g, its Lanczos result (error, HVPs,
    converged), the outlier Ritz values and residuals (NaN-padded, largest
    first) and the gradient g."""

    field: jax.Array
    result: MatfunResult
    outliers: jax.Array
    outlier_residuals: jax.Array
    g: jax.Array


def krylov_field(loss: Callable, lr, theta, tol: float, max_size: int, threshold: float) -> KrylovField:
    """The PF field at ``theta`` (real or complex, shape (D,)) by Lanczos from g; traceable.

    A complex theta with zero imaginary part runs in real arithmetic; the
    results (field, outliers) are then cast back to complex.
    """
    lanczos.check_krylov_args(theta.shape[0], min(max_size, theta.shape[0]), 1, tol, theta.dtype)
    if not jnp.iscomplexobj(theta):
        return _evaluate(loss, lr, theta, tol, max_size, threshold)
    return jax.lax.cond(
        jnp.all(theta.imag == 0),
        lambda th: _as_complex(_evaluate(loss, lr, th.real, tol, max_size, threshold), th.dtype),
        lambda th: _evaluate(loss, lr, th, tol, max_size, threshold),
        theta,
    )


def _as_complex(out: KrylovField, dtype) -> KrylovField:
    return out._replace(field=out.field.astype(dtype), outliers=out.outliers.astype(dtype), g=out.g.astype(dtype))


def _evaluate(loss, lr, theta, tol, max_size, threshold) -> KrylovField:
    max_size = min(max_size, theta.shape[0])
    operator = hessian_operator(loss, theta)
    g = operator.gradient

    def is_outlier(ritz: lanczos.Ritz):
        return ritz.valid & (lr * ritz.values.real > threshold)

    def outliers_converged(ritz: lanczos.Ritz):
        scale = jnp.max(jnp.where(ritz.valid, jnp.abs(ritz.values), 0))
        return jnp.all(jnp.where(is_outlier(ritz), ritz.residuals <= tol * scale, True))

    result, ritz = matfun(
        operator.matvec,
        lambda x: pf_components(stability_coefficients(x, lr), 1),
        g,
        tol,
        max_size,
        accept=outliers_converged,
    )
    outlier = is_outlier(ritz)
    order = jnp.argsort(jnp.where(outlier, -ritz.values.real, jnp.inf))
    nan = jnp.asarray(jnp.nan, ritz.values.dtype)
    outliers = jnp.where(outlier, ritz.values, nan)[order]
    residuals = jnp.where(outlier, ritz.residuals, jnp.nan)[order]
    return KrylovField(result.value, result, outliers, residuals, g)
