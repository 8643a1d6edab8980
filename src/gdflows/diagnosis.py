r"""Edge-of-stability diagnostics at one point, through the PF lens.

For the top-k eigenpairs (lambda_i, u_i) of H at theta and learning rate h:

.. math::

    sc_i = \frac{\log_\star(1 - h\lambda_i)}{h\lambda_i}, \quad
    c_i = u_i^T g, \quad \frac{c_i^2}{|g|^2}, \quad
    \frac{dE}{dt} = g^T f(H) g = \sum_i sc_i c_i^2, \quad
    \frac{|Hg|}{|g|}, \quad
    \frac{dE}{dt}\Big|_{\rm quadratic} = -|g|^2 + \frac{h}{2}\, g^T H g.

The last is the one-step quadratic model, the cheapest predictor of GD's next
loss change: (E(theta - h g) - E(theta)) / h to second order in h, exact on a
quadratic (where the PF is exact too), at the cost of the one HVP H g that
|Hg|/|g| needs anyway. The PF's dE/dt is set beside it, not only beside
gradient flow's -|g|^2.

dE/dt is reported twice: over the top-k directions only (``energy_rate_topk``)
and over the whole spectrum (``energy_rate``, from the PF field,
:meth:`gdflows.flows.Principal.evaluate`, with its accuracy: ``pf_error``,
``pf_converged``); their difference is the bulk's share. Whether the eigenpairs
met their tolerance is ``eig_converged``. Directions with
h lambda_i = 1 contribute 0 (as in the PF field). Eigenpairs and the field are
dense or Krylov by :func:`gdflows.curvature.use_dense`; above its cut-off
nothing forms a dense Hessian. The theory: docs/theory.md, section 7.

With ``pf_step=True`` the PF's own prediction of the step is added: the PF integrated from theta over one
step, and the real part of the loss there,

.. math:: \frac{\Delta E_{PF}}{h} = \frac{\mathrm{Re}\, E(\theta_{PF}(h)) - E(\theta)}{h},

which on a quadratic equals GD's (E(theta - h g) - E(theta)) / h exactly; its solve's :class:`Status` is
``pf_step_status`` (a failed solve gives NaN, never a guess). The solve controls its error against the step's
own length: it integrates the displacement theta_PF(t) - theta with rtol the field's own tolerance ``tol``
and atol that fraction of GD's step per component, :math:`h |g| / \sqrt{D}` (an error norm relative to
|theta| let a one-step solve at a conv-net state at the edge err by a fifth of the loss change, along the top
direction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from gdflows.curvature.chunked import grad_of, hvp_of
from gdflows.curvature.eigen import solve_eigenpairs
from gdflows.errors import GDFlowsError
from gdflows.flows.principal import Principal
from gdflows.integrate import integrate
from gdflows.params import flatten_loss, is_flat, unravel_rows
from gdflows.stability.coefficients import pf_components, regime_of, sc_of_x
from gdflows.validation import check_lr, check_tol, default_tol, is_integer_in


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Per-direction (arrays of length k, lambda_0 largest) and global quantities."""

    lr: float
    eigenvalues: np.ndarray
    sc: np.ndarray
    c: np.ndarray
    c2_fraction: np.ndarray  # c_i^2 / |g|^2
    regimes: np.ndarray
    energy_rate: complex  # sum over all i of sc_i c_i^2
    energy_rate_topk: complex  # the same sum over the top k only
    hg_over_g: float  # |H g| / |g|
    grad_norm: float
    quadratic_rate: float  # -|g|^2 + (h/2) g^T H g: the one-step quadratic model's (E(theta - h g) - E) / h
    hvps: int
    pf_error: float  # a-posteriori error estimate of the PF field behind energy_rate
    pf_converged: bool  # whether that field met tol within max_size HVPs
    eig_converged: bool = True  # whether the eigenpairs met tol within max_size HVPs
    vectors: Any = None  # u_0..u_{k-1}: rows (k, D), or a pytree with a leading k axis; the next call's warm start
    pf_step_rate: float | None = None  # (Re E(theta_PF(h)) - E(theta)) / h, with pf_step=True
    pf_step_status: str = ""  # the status of that one-step PF solve

    def as_row(self) -> dict:
        """A flat dict for a metrics table (one column per quantity and direction)."""
        row = {
            "two_over_h": 2 / self.lr,
            "dE_dt": float(np.real(self.energy_rate)),
            "dE_dt_topk": float(np.real(self.energy_rate_topk)),
            "dE_dt_rest": float(np.real(self.energy_rate - self.energy_rate_topk)),
            "hg_over_g": self.hg_over_g,
            "grad_norm": self.grad_norm,
            "dE_dt_quadratic": self.quadratic_rate,
            "hvps": self.hvps,
            "pf_error": self.pf_error,
            "pf_converged": self.pf_converged,
            "eig_converged": self.eig_converged,
        }
        if self.pf_step_rate is not None:
            row |= {"dE_dt_pf_step": self.pf_step_rate, "pf_step_status": self.pf_step_status}
        for i in range(len(self.eigenvalues)):
            row |= {
                f"lambda_{i}": float(np.real(self.eigenvalues[i])),
                f"sc_{i}_re": float(np.real(self.sc[i])),
                f"sc_{i}_im": float(np.imag(self.sc[i])),
                f"c_{i}": float(np.real(self.c[i])),
                f"c2_fraction_{i}": float(np.real(self.c2_fraction[i])),
                f"regime_{i}": str(self.regimes[i]),
            }
        return row


def diagnose(
    loss: Callable,
    params,
    lr,
    k: int,
    tol: float | None = None,
    warm_start=None,
    max_size: int = 100,
    pf_step: bool = False,
) -> Diagnosis:
    """Diagnose GD at ``params`` with learning rate ``lr`` along the top-``k`` directions.

    ``loss``: any loss over ``params`` (a ChunkedLoss for big data);
    ``params``: a flat theta (D,) or a pytree, as for
    :func:`gdflows.curvature.hessian_eigenpairs` (``vectors`` then comes back as
    that pytree with a leading k axis); ``tol``: eigenpair residual and PF-field
    tolerance, by default what the parameters' dtype resolves
    (:func:`gdflows.validation.default_tol`); ``max_size``: HVP budget of each Lanczos solve (eigenpairs, PF
    field), where the dense path is not used; a solve that runs out of it is
    reported in ``eig_converged`` / ``pf_converged``, not raised;
    ``warm_start``: the previous eigenvectors (see
    :func:`gdflows.curvature.hessian_eigenpairs`); ``pf_step``: also integrate the PF over one step
    (``pf_step_rate``, see the module; up to 31 field evaluations at a conv-net state at the edge: over a run
    there about 8x a diagnosis' cost, more on the way into a catapult).
    """
    h = check_lr(lr)
    flat_loss, theta, unravel = flatten_loss(loss, params)
    dim = theta.shape[0]
    tol = default_tol(theta.real.dtype) if tol is None else check_tol(tol, theta.real.dtype)
    if not is_integer_in(k, 1, dim):
        raise GDFlowsError(f"k must be an integer in [1, D = {dim}], got {k!r}")
    if not is_integer_in(max_size, 2):
        raise GDFlowsError(f"max_size must be an integer >= 2, got {max_size!r}")
    eig_budget = max(k, min(max_size, dim))
    pairs = solve_eigenpairs(flat_loss, theta, k, "LA", tol, eig_budget, warm_start)
    g = grad_of(flat_loss)(theta)
    g2 = g @ g
    c = pairs.vectors @ g
    hg = hvp_of(flat_loss)(theta, g)
    sc = sc_of_x(h * pairs.values)
    pf = Principal(flat_loss, jnp.asarray(h), tol=float(tol), max_size=int(max_size))
    _, info = pf.evaluate(theta)
    step = _pf_step(flat_loss, pf, theta, h, float(jnp.sqrt(g2))) if pf_step else (None, "")
    return Diagnosis(
        lr=h,
        eigenvalues=np.asarray(pairs.values),
        sc=np.asarray(sc),
        c=np.asarray(c),
        c2_fraction=np.asarray(c**2 / g2),
        regimes=regime_of(np.asarray(pairs.values), h),
        energy_rate=complex(info.energy_rate),
        energy_rate_topk=complex(jnp.sum(pf_components(sc, c**2))),
        hg_over_g=float(jnp.linalg.norm(hg) / jnp.linalg.norm(g)),
        grad_norm=float(jnp.linalg.norm(g)),
        quadratic_rate=float(jnp.real(-g2 + 0.5 * h * (g @ hg))),
        hvps=int(pairs.hvps) + int(info.hvps) + 1,
        pf_error=float(info.error),
        pf_converged=bool(info.converged),
        eig_converged=bool(pairs.converged),
        vectors=np.asarray(pairs.vectors) if is_flat(params) else unravel_rows(unravel, pairs.vectors),
        pf_step_rate=step[0],
        pf_step_status=step[1],
    )


def pf_step_solve(h: float, tol: float, g_norm: float, theta) -> dict:
    """:func:`gdflows.integrate` keyword arguments of the one-step PF solve at flat ``theta`` (see the module):
    the displacement, rtol ``tol``, atol ``tol`` h |g| / sqrt(D), the whole step h tried first."""
    scale = h * g_norm / np.sqrt(theta.shape[0])  # GD's step, per component (RMS)
    atol = max(tol * scale, float(jnp.finfo(jnp.real(theta).dtype).tiny))
    return {"rtol": tol, "atol": atol, "first_step": h, "displacement": True}


def _pf_step(flat_loss, pf: Principal, theta, h: float, g_norm: float) -> tuple[float, str]:
    """((Re E(theta_PF(h)) - E(theta)) / h, the solve's status); NaN when the solve left no finite state.

    The error is measured on the displacement (see the module); the first trial step is the whole step h,
    which the error estimate accepts where the PF is nearly linear over it and shrinks where it is not."""
    sol = integrate(pf, theta, steps=1, **pf_step_solve(h, pf.tol, g_norm, theta))
    end = sol.thetas[1]
    if not bool(jnp.all(jnp.isfinite(end))):
        return float("nan"), str(sol.status)
    change = jnp.real(flat_loss(end)) - jnp.real(flat_loss(theta))
    return float(change) / h, str(sol.status)
