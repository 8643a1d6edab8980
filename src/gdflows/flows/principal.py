r"""The Principal Flow (PF) and the PF plus the non-principal term.

.. math::

    \dot\theta = \sum_i sc_i\, c_i\, u_i = \frac{1}{h}\log(I - hH)\, H^{-1} g,
    \qquad sc_i = \frac{\log(1 - h\lambda_i)}{h\lambda_i},\quad c_i = u_i^\top g

(sum of the principal backward-error terms -(h^p/(p+1)) H^p g). It follows GD
exactly on quadratics for every h, including oscillation (1 < h lambda < 2)
and divergence (h lambda > 2), where its state is complex. With
``non_principal=True`` the field gains :math:`-\frac{h^2}{12} D^3E[g,g]`
(one-step error O(h^4) instead of O(h^3)).

Branch and limits: ``sc`` is :func:`gdflows.stability.stability_coefficients`
(log with +i*pi for h lambda > 1, chosen continuously; series near lambda = 0).

One-step removal (h lambda_i = 1 exactly, i.e. 1 - h lambda_i rounds to 0):
sc_i = -inf and the exact flow map removes c_i at t = 0+ (GD's factor is 0).
A vector field cannot jump, so the PF does it in two parts: :meth:`jump`
returns the state after the instantaneous removal,
``theta - h * sum_{h lambda_i = 1} c_i u_i`` (exact on quadratics), and the
field's component along such u_i is 0 (the flow stays on c_i = 0).
:func:`gdflows.integrate` applies ``jump`` at t = 0+.
"""

from typing import Callable, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature.dense import spectral_coordinates
from gdflows.curvature.hvp import d3, gradient, hessian
from gdflows.stability.coefficients import stability_coefficients
from gdflows.errors import GDFlowsError
from gdflows.validation import check_lr


def pf_components(sc, c):
    """sc_i * c_i, with the one-step-removal directions (sc = -inf) set to 0."""
    removed = jnp.isneginf(jnp.real(sc))
    return jnp.where(removed, 0, sc) * c


METHODS = ("auto", "dense", "krylov")
DENSE_MAX_D = 256  # "auto": dense Hessian + eig up to this D, Krylov above
KRYLOV_THRESHOLD = 0.9  # Krylov: h*lambda above which directions are exact eigenpairs


class Principal(eqx.Module):
    """dtheta/dt = U diag(sc) U^{-1} g  (+ -(h^2/12) D3E[g, g] if non_principal).

    ``method="dense"`` forms the Hessian and diagonalises it (small D);
    ``"krylov"`` evaluates f(H) g by Lanczos with exact outlier eigenpairs
    (:mod:`gdflows.flows.principal_scalable`; ``tol``, ``max_size``,
    ``threshold`` go there); ``"auto"`` picks dense for D <= DENSE_MAX_D.
    """

    loss: Callable
    lr: jax.Array  # an array, so a new lr reuses the compiled solve
    non_principal: bool = False
    method: str = eqx.field(static=True, default="auto")
    tol: float = eqx.field(static=True, default=1e-8)
    max_size: int = eqx.field(static=True, default=100)
    threshold: float = eqx.field(static=True, default=KRYLOV_THRESHOLD)
    complex_state: ClassVar[bool] = True

    def is_dense(self, dim: int) -> bool:
        return self.method == "dense" or (self.method == "auto" and dim <= DENSE_MAX_D)

    def __call__(self, theta, t=None):
        theta = theta.astype(jnp.result_type(theta, jnp.complex64))
        dense = self.is_dense(theta.shape[0])
        g = gradient(self.loss)(theta) if dense or self.non_principal else None  # Krylov computes its own
        if dense:
            lam, U, c = self._spectrum(theta, g)
            field = U @ pf_components(stability_coefficients(lam, self.lr), c)
        else:
            field = self.scalable()(theta)
        if self.non_principal:
            field = field - (self.lr**2 / 12) * d3(self.loss, theta, g)
        return field

    def _spectrum(self, theta, g):
        """(lambda, U, c = U^{-1} g) of the dense Hessian at theta."""
        return spectral_coordinates(hessian(self.loss, theta), g)

    def scalable(self):
        """The Krylov evaluator of the principal part (``.evaluate`` gives error estimates)."""
        from gdflows.flows.principal_scalable import ScalablePrincipal

        return ScalablePrincipal(self.loss, self.lr, self.tol, self.max_size, self.threshold)

    def jump(self, theta):
        """The state at t = 0+: components with h lambda_i = 1 removed (dense path only;
        a Krylov method never produces a Ritz value with h theta exactly 1)."""
        if not self.is_dense(theta.shape[0]):
            return theta
        lam, U, c = self._spectrum(theta, gradient(self.loss)(theta))
        removed = self.lr * lam == 1
        return theta - self.lr * (U @ jnp.where(removed, c, 0)).astype(theta.dtype)


def principal(loss: Callable, lr, non_principal: bool = False, method: str = "auto",
              tol: float = 1e-8, max_size: int = 100,
              threshold: float = KRYLOV_THRESHOLD) -> Principal:
    """The Principal Flow of ``loss`` at learning rate ``lr`` (see :class:`Principal`)."""
    if method not in METHODS:
        raise GDFlowsError(f"method must be one of {METHODS}, got {method!r}")
    from gdflows.flows.principal_scalable import principal_scalable  # it imports pf_components from here

    h = check_lr(lr)
    if method != "dense":
        principal_scalable(loss, h, tol, max_size, threshold)  # validates the Krylov arguments
    return Principal(loss, jnp.asarray(h), bool(non_principal), method, float(tol), int(max_size), float(threshold))
