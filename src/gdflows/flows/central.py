r"""The central flow (Cohen, Damian et al., ICLR 2025): GD at the edge of stability, time-averaged.

In flow time t = n h (so the paper's factor h is absorbed):

.. math::

    \dot w = -\Big[g + \tfrac12 \nabla_w \langle H(w), \Sigma\rangle\Big],
    \qquad \Sigma = \sum_i \sigma_i^2\, u_i u_i^\top,

so :math:`\nabla\langle H, \Sigma\rangle = \sum_i \sigma_i^2 \nabla\lambda_i` with
:math:`\nabla\lambda_i = D^3E[u_i, u_i]`. The oscillation covariance Sigma is what
keeps the top eigenvalues from exceeding 2/h. With one unstable direction
:math:`\sigma^2 = 2\langle -g, \nabla S\rangle / \|\nabla S\|^2` makes dS/dt = 0.

For k directions, sigma^2 >= 0 solves the linear complementarity problem

.. math::

    M\sigma^2 - r \ge 0,\quad \sigma^2 \ge 0,\quad \sigma^2\cdot(M\sigma^2 - r) = 0,
    \qquad M_{ij} = \nabla\lambda_i\cdot\nabla\lambda_j,\;
    r_i = 2\big(-\nabla\lambda_i\cdot g + \kappa(\lambda_i - 2/h)\big),

i.e. :math:`d\lambda_i/dt = -\kappa(\lambda_i - 2/h)` on the active directions and
no faster rise elsewhere. kappa > 0 (default 4/h) pulls a drifted lambda_i back to
2/h by a factor e^-4 per GD step of flow time, instead of only freezing it
(Baumgarte stabilisation); it also makes the field continuous, so an adaptive
solver needs no event detection: far below 2/h, r_i < 0 and sigma_i = 0 (the
NGF). Sigma is restricted to the eigenbasis (diagonal there); with one
unstable direction this is exact. The LCP is solved by projected Gauss-Seidel
(M is a Gram matrix: PSD, so the iteration converges).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.curvature.hvp import d3, gradient
from gdflows.errors import GDFlowsError
from gdflows.flows.base import Flow, exact_info
from gdflows.validation import check_lr, is_integer_in

LCP_SWEEPS = 200
KAPPA_PER_STEP = 4.0  # default kappa = 4/h: a start above 2/h is pulled to within 2% of its excess in one step


def solve_lcp(M, r, sweeps: int = LCP_SWEEPS):
    """s >= 0 with M s - r >= 0 and s . (M s - r) = 0, by projected Gauss-Seidel."""
    diag = jnp.maximum(jnp.diag(M), jnp.finfo(M.dtype).tiny)

    def coordinate(i, s):
        return s.at[i].set(jnp.maximum(0.0, s[i] - (M[i] @ s - r[i]) / diag[i]))

    def sweep(_, s):
        return jax.lax.fori_loop(0, r.shape[0], coordinate, s)

    return jax.lax.fori_loop(0, sweeps, sweep, jnp.zeros_like(r))


class Central(Flow):
    """dw/dt = -g - 1/2 sum_i sigma_i^2 grad lambda_i, sigma^2 from the LCP above."""

    loss: Callable
    lr: jax.Array
    k: int = 1
    kappa: jax.Array | None = None

    def parts(self, theta):
        """(g, lambda (k,), grad lambda (k, D), sigma^2 (k,)) at theta."""
        g = gradient(self.loss)(theta)
        pairs = top_eigenpairs(self.loss, theta, self.k, tol=1e-10)
        lam, U = pairs.values, pairs.vectors
        grad_lam = jax.vmap(lambda u: d3(self.loss, theta, u))(U)
        kappa = KAPPA_PER_STEP / self.lr if self.kappa is None else self.kappa
        r = 2 * (-(grad_lam @ g) + kappa * (lam - 2.0 / self.lr))
        return g, lam, grad_lam, solve_lcp(grad_lam @ grad_lam.T, r)

    def evaluate(self, theta):
        g, _, grad_lam, sigma2 = self.parts(theta)
        field = -g - 0.5 * grad_lam.T @ sigma2
        return field, exact_info(field)


def central(loss: Callable, lr, k: int = 1, kappa=None) -> Central:
    """The central flow of ``loss`` at learning rate ``lr`` with k tracked directions."""
    h = check_lr(lr)
    if not is_integer_in(k, 1):
        raise GDFlowsError(f"k (number of tracked eigendirections) must be an integer >= 1, got {k!r}")
    if kappa is not None and not float(kappa) > 0:
        raise GDFlowsError(f"kappa must be > 0 (or None for 4/lr), got {kappa!r}")
    return Central(loss, jnp.asarray(h), int(k), None if kappa is None else jnp.asarray(float(kappa)))
