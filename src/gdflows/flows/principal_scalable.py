r"""The Principal Flow field at network scale: Krylov, never a dense Hessian.

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
count and the outliers are returned by :meth:`ScalablePrincipal.evaluate`.

Complex states: the Hessian is complex-symmetric and Lanczos uses the
bilinear form x^T y (c_j = y_j^T g), as the dense path's U^{-1} g. A state
of complex dtype whose imaginary part is exactly 0 (theta_0, and every state
of a PF with all h lambda < 1) runs in real arithmetic, as the dense path's
``eigh`` branch does: real HVPs, ``eigh`` for the Ritz pairs.

One-step removal: a direction with h lambda exactly 1 has sc = -inf and
contributes 0 (the flow lives on c_i = 0), as in the dense path
(:func:`gdflows.flows.principal.pf_components`). The instantaneous removal
at t = 0+ (the dense path's ``jump``) is not done here; it needs a Ritz value
with h theta exactly 1, which a Krylov method does not produce.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature import lanczos
from gdflows.curvature.chunked import grad_of, hvp_of
from gdflows.curvature.matfun import matfun
from gdflows.errors import GDFlowsError
from gdflows.flows.principal import KRYLOV_THRESHOLD, pf_components
from gdflows.stability.coefficients import stability_coefficients
from gdflows.validation import check_flat, check_lr, is_integer_in


class PFInfo(eqx.Module):
    """What one scalable PF evaluation did.

    error: a-posteriori estimate of |field - exact field| (absolute 2-norm);
    hvps: Hessian-vector products used; converged: tol met within max_size;
    outliers: Ritz values with Re(h theta) > threshold, padded with NaN
    (largest first); outlier_residuals: their residual norms; energy_rate:
    the PF-predicted dE/dt = g^T field = sum_i sc_i c_i^2.
    """

    error: jax.Array
    hvps: jax.Array
    converged: jax.Array
    outliers: jax.Array
    outlier_residuals: jax.Array
    energy_rate: jax.Array


class ScalablePrincipal(eqx.Module):
    """dtheta/dt = f(H) g with f = sc, by Lanczos from g (see the module docstring).

    ``loss`` is any loss over a flat theta; a
    :class:`gdflows.curvature.ChunkedLoss` keeps memory bounded by a chunk.
    """

    loss: Callable
    lr: jax.Array
    tol: float = eqx.field(static=True, default=1e-8)
    max_size: int = eqx.field(static=True, default=100)
    threshold: float = eqx.field(static=True, default=KRYLOV_THRESHOLD)
    complex_state: ClassVar[bool] = True

    def __call__(self, theta, t=None):
        return self.evaluate(theta)[0]

    @eqx.filter_jit
    def evaluate(self, theta) -> tuple[jax.Array, PFInfo]:
        """(field, info) at ``theta`` (real or complex, shape (D,)); complex
        results (field, outliers) whenever theta is complex."""
        theta = check_flat(theta, "theta")
        if not jnp.iscomplexobj(theta):
            return self._evaluate(theta)
        return jax.lax.cond(jnp.all(theta.imag == 0), lambda th: self._evaluate_real_part(th),
                            lambda th: self._evaluate(th), theta)

    def _evaluate_real_part(self, theta):
        field, info = self._evaluate(theta.real)
        outliers = info.outliers.astype(theta.dtype)
        return field.astype(theta.dtype), eqx.tree_at(lambda i: i.outliers, info, outliers)

    def _evaluate(self, theta):
        max_size = min(self.max_size, theta.shape[0])
        lanczos.check_krylov_args(theta.shape[0], max_size, 1, self.tol, theta.dtype)
        g = grad_of(self.loss)(theta)
        result, ritz = matfun(
            lambda v: hvp_of(self.loss)(theta, v),
            lambda x: pf_components(stability_coefficients(x, self.lr), 1),
            g, self.tol, max_size, accept=self._outliers_converged,
        )
        outliers, residuals = self._outliers(ritz)
        info = PFInfo(result.error, result.hvps, result.converged, outliers, residuals, g @ result.value)
        return result.value, info

    def _is_outlier(self, ritz: lanczos.Ritz):
        return ritz.valid & (self.lr * ritz.values.real > self.threshold)

    def _outliers_converged(self, ritz: lanczos.Ritz):
        scale = jnp.max(jnp.where(ritz.valid, jnp.abs(ritz.values), 0))
        return jnp.all(jnp.where(self._is_outlier(ritz), ritz.residuals <= self.tol * scale, True))

    def _outliers(self, ritz: lanczos.Ritz):
        outlier = self._is_outlier(ritz)
        order = jnp.argsort(jnp.where(outlier, -ritz.values.real, jnp.inf))
        nan = jnp.asarray(jnp.nan, ritz.values.dtype)
        return jnp.where(outlier, ritz.values, nan)[order], jnp.where(outlier, ritz.residuals, jnp.nan)[order]


def principal_scalable(loss: Callable, lr, tol: float = 1e-8, max_size: int = 100,
                       threshold: float = KRYLOV_THRESHOLD) -> ScalablePrincipal:
    """The PF of ``loss`` at learning rate ``lr``, by Krylov (for large D).

    ``tol``: relative accuracy of the field (a-posteriori estimate) and of
    the outlier eigenpairs (relative residual). ``max_size``: HVP budget per
    evaluation (at most D is used). ``threshold``: h*lambda above which a direction is resolved as
    an exact eigenpair (must be < 1, where sc stops being analytic).
    """
    h = check_lr(lr)
    if not 0 < tol < 1:
        raise GDFlowsError(f"tol must be in (0, 1), got {tol!r}; e.g. tol=1e-8")
    if not is_integer_in(max_size, 2):
        raise GDFlowsError(f"max_size must be an integer >= 2, got {max_size!r}")
    if not 0 < threshold < 1:
        raise GDFlowsError(
            f"threshold must be in (0, 1) (h*lambda below the branch point 1), got {threshold!r}"
        )
    return ScalablePrincipal(loss, jnp.asarray(h), float(tol), int(max_size), float(threshold))
