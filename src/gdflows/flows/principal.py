r"""The Principal Flow (PF) and the PF plus the non-principal term.

.. math::

    \dot\theta = \sum_i sc_i\, c_i\, u_i = \frac{1}{h}\log(I - hH)\, H^{-1} g,
    \qquad sc_i = \frac{\log(1 - h\lambda_i)}{h\lambda_i},\quad c_i = u_i^\top g

(sum of the principal backward-error terms -(h^p/(p+1)) H^p g). It follows GD
exactly on quadratics for every h, including oscillation (1 < h lambda < 2)
and divergence (h lambda > 2), where its state is complex. With
``non_principal=True`` the field gains :math:`-\frac{h^2}{12} D^3E[g,g]`
(one-step error O(h^4) instead of O(h^3)). The theory: docs/theory.md,
sections 3 to 6.

Two ways to evaluate the same field, one class (:class:`Principal`):

* dense (small D): form H, diagonalise it (``eigh`` at a real state, ``eig``
  at a complex one, c = U^{-1} g by a solve);
* Krylov (large D; :mod:`gdflows.flows._krylov`): f(H) g by Lanczos from g,
  the directions with h lambda > ``threshold`` as exact eigenpairs, the rest
  under an a-posteriori error estimate.

``method="auto"`` picks dense where :func:`gdflows.curvature.use_dense` says
so (the cut-off every top-eigenpair computation in gdflows shares).
:meth:`Principal.evaluate` returns the field and a :class:`PFInfo` on both
paths.

Branch and limits: ``sc`` is :func:`gdflows.stability.stability_coefficients`
(log with +i*pi for h lambda > 1, chosen continuously; series near lambda = 0).

One-step removal (h lambda_i = 1 exactly, i.e. 1 - h lambda_i rounds to 0):
sc_i = -inf and the exact flow map removes c_i at t = 0+ (GD's factor is 0).
A vector field cannot jump, so the PF does it in two parts: :meth:`Principal.jump`
returns the state after the instantaneous removal,
``theta - h * sum_{h lambda_i = 1} c_i u_i`` (exact on quadratics), and the
field's component along such u_i is 0 (the flow stays on c_i = 0).
:func:`gdflows.integrate` applies ``jump`` at t = 0+. The Krylov path does not
jump: it never produces a Ritz value with h theta exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature.dense import spectral_coordinates
from gdflows.curvature.eigen import METHODS, use_dense
from gdflows.curvature.hvp import d3, gradient, hessian
from gdflows.errors import GDFlowsError
from gdflows.flows._krylov import krylov_field
from gdflows.flows.base import FieldInfo, Flow
from gdflows.stability.coefficients import pf_components, stability_coefficients
from gdflows.validation import check_flat, check_lr, default_tol, is_integer_in

KRYLOV_THRESHOLD = 0.9  # Krylov: h*lambda above which directions are exact eigenpairs


class PFInfo(FieldInfo):
    """What one PF evaluation did (both paths).

    error: a-posteriori estimate of |field - exact field| (absolute 2-norm; 0
    on the dense path); converged: tol met within max_size (always on the
    dense path); hvps: Hessian-vector products used (D for the dense
    Hessian); outliers: eigenvalues (Ritz values) with Re(h lambda) >
    threshold, largest first, NaN-padded; outlier_residuals: their residual
    norms; energy_rate: the PF-predicted dE/dt = g^T field = sum_i sc_i c_i^2.
    """

    hvps: jax.Array
    outliers: jax.Array
    outlier_residuals: jax.Array
    energy_rate: jax.Array


class Principal(Flow):
    """dtheta/dt = U diag(sc) U^{-1} g  (+ -(h^2/12) D3E[g, g] if non_principal).

    Build it with :func:`principal`.
    """

    loss: Callable
    lr: jax.Array  # an array, so a new lr reuses the compiled solve
    non_principal: bool = eqx.field(static=True, default=False)
    method: str = eqx.field(static=True, default="auto")
    tol: float = eqx.field(static=True, default=1e-8)
    max_size: int = eqx.field(static=True, default=100)
    threshold: float = eqx.field(static=True, default=KRYLOV_THRESHOLD)
    complex_state: ClassVar[bool] = True

    def is_dense(self, dim: int) -> bool:
        return use_dense(dim, self.method)

    @eqx.filter_jit
    def evaluate(self, theta) -> tuple[jax.Array, PFInfo]:
        """(field, info) at ``theta`` (real or complex, shape (D,)); the field is complex."""
        theta = check_flat(theta, "theta")
        complex_theta = theta.astype(jnp.result_type(theta, jnp.complex64))
        if self.is_dense(theta.shape[0]):
            field, info, g = self._dense(complex_theta)
        else:  # a real theta stays real: the complex-arithmetic branch is not even compiled
            field, info, g = self._krylov(theta)
        if self.non_principal:
            field = field - (self.lr**2 / 12) * d3(self.loss, complex_theta, g)
            info = eqx.tree_at(lambda i: i.energy_rate, info, g @ field)
        return field, info

    def _dense(self, theta):
        g = gradient(self.loss)(theta)
        lam, U, c = spectral_coordinates(hessian(self.loss, theta), g)
        field = U @ pf_components(stability_coefficients(lam, self.lr), c)
        outlier = self.lr * lam.real > self.threshold
        order = jnp.argsort(jnp.where(outlier, -lam.real, jnp.inf))
        outliers = jnp.where(outlier, lam, jnp.nan)[order]
        zero = jnp.zeros((), theta.real.dtype)
        info = PFInfo(
            jnp.asarray(True),
            zero,
            jnp.asarray(theta.shape[0]),
            outliers,
            jnp.where(jnp.isnan(outliers.real), jnp.nan, zero),
            g @ field,
        )
        return field, info, g

    def _krylov(self, theta):
        tol = default_tol(theta.real.dtype) if self.tol is None else self.tol
        out = krylov_field(self.loss, self.lr, theta, tol, self.max_size, self.threshold)
        r = out.result
        dtype = jnp.result_type(theta, jnp.complex64)
        field, g = out.field.astype(dtype), out.g.astype(dtype)
        info = PFInfo(r.converged, r.error, r.hvps, out.outliers.astype(dtype), out.outlier_residuals, g @ field)
        return field, info, g

    def jump(self, theta):
        """The state at t = 0+: components with h lambda_i = 1 removed (dense path only)."""
        if not self.is_dense(theta.shape[0]):
            return theta
        lam, U, c = spectral_coordinates(hessian(self.loss, theta), gradient(self.loss)(theta))
        removed = self.lr * lam == 1
        return theta - self.lr * (U @ jnp.where(removed, c, 0)).astype(theta.dtype)


def principal(
    loss: Callable,
    lr,
    non_principal: bool = False,
    method: str = "auto",
    tol: float | None = None,
    max_size: int = 100,
    threshold: float = KRYLOV_THRESHOLD,
) -> Principal:
    """The Principal Flow of ``loss`` at learning rate ``lr``.

    ``method``: "dense", "lanczos" (the Krylov field), or "auto" (dense for D <= DENSE_MAX_D).
    Krylov only: ``tol`` is the relative accuracy of the field (a-posteriori
    estimate) and of the outlier eigenpairs (relative residual), by default what
    the state's dtype resolves (:func:`gdflows.validation.default_tol`); ``max_size``
    the HVP budget per evaluation (at most D is used); ``threshold`` the
    h*lambda above which a direction is resolved as an exact eigenpair
    (in (0, 1): sc stops being analytic at 1).
    """
    if method not in METHODS:
        raise GDFlowsError(f"method must be one of {METHODS}, got {method!r}")
    h = check_lr(lr)
    if tol is not None and not 0 < tol < 1:
        raise GDFlowsError(f"tol must be in (0, 1), got {tol!r}; e.g. tol=1e-8 (float64), 1e-5 (float32)")
    if not is_integer_in(max_size, 2):
        raise GDFlowsError(f"max_size must be an integer >= 2, got {max_size!r}")
    if not 0 < threshold < 1:
        raise GDFlowsError(f"threshold must be in (0, 1) (h*lambda below the branch point 1), got {threshold!r}")
    return Principal(
        loss,
        jnp.asarray(h),
        bool(non_principal),
        method,
        None if tol is None else float(tol),
        int(max_size),
        float(threshold),
    )
