r"""The central flow of full-batch RMSProp (Cohen, Damian et al., ICLR 2025): RMSProp at its edge of
stability, time-averaged, on the solver of GD's central flow (:mod:`gdflows.flows.central`).

RMSProp as optax runs it, :math:`\nu \leftarrow \beta_2\nu + (1-\beta_2) g^2`, then
:math:`w \leftarrow w - h\, g / P`, :math:`P = \sqrt{\nu + \epsilon}`, is preconditioned GD; it is stable
along the top eigenvector of :math:`P^{-1}H` while :math:`\lambda_{\max}(P^{-1/2} H P^{-1/2}) \le 2/h`
(the preconditioned sharpness). In flow time t = n h (docs/theory.md, section 9):

.. math::

    \dot w = -P^{-1}\Big[g + \tfrac12 \nabla_w\langle\Sigma, H\rangle\Big], \qquad
    \dot\nu = r\,\big[g^{\odot 2} + \operatorname{diag}(H\Sigma H) - \nu\big], \qquad
    r = \frac{1-\beta_2}{\beta_2 h},

with :math:`\Sigma = U S U^\top` the oscillation's covariance: U (k x D) spans the top-k eigenvectors of
:math:`H u = \lambda P u`, normalised :math:`U^\top P U = I` at each GD step (:math:`U = P^{-1/2} V`, V
the orthonormal top-k eigenvectors of :math:`P^{-1/2} H P^{-1/2}`), and S (k x k, PSD) solves GD's
semidefinite complementarity problem (:mod:`gdflows.flows._sdcp`) in this geometry: with the gap
:math:`\Gamma = U^\top (cP - H) U` (c = 2/h; no preconditioned eigenvalue above it),

.. math::

    A(S) = \Gamma/\tau + \dot\Gamma(S), \qquad
    \dot\Gamma = c\, U^\top \operatorname{diag}\!\Big(\frac{\dot\nu}{2P}\Big) U - J\dot w ,

affine in S through :math:`\dot w` (the term :math:`\tfrac12 J P^{-1} J^\top`) and through
:math:`\dot\nu` (the oscillating gradient :math:`\delta g = H\,\delta w` raises the EMA by
:math:`\operatorname{diag}(H\Sigma H) = \sum_{pq} S_{pq}\, (Hu_p) \odot (Hu_q)`). Where the gap is active,
:math:`Hu = cPu`, and the second term is :math:`(c^3 r/2)\, W \operatorname{diag}(P) W^\top` (W: rows
:math:`u_i \odot u_j`), PSD; elsewhere S vanishes. The linear map is symmetrised and cut to its PSD part
before the SDCP (as the authors' implementation does with theirs), so the problem stays a convex program.

Solver: :func:`gdflows.solve_central`, the same fixed Euler substeps dt = tau = h/substeps as GD's
central flow, the basis and J renewed once per GD step, :math:`\Gamma` (k HVPs) and S at every
substep, nu advanced beside w. The loss prediction is :math:`L + \tfrac12\langle S, U^\top H U\rangle`
(RMSProp's time-averaged loss).

The discrete step divides by the EMA *after* its update, so RMSProp started from a state nu_0 takes its
first step with :math:`\beta_2\nu_0 + (1-\beta_2)g_0^2`; :func:`gdflows.solve_central` starts the flow
from the ``nu0`` it is given (default :math:`g(\theta_0)^{\odot 2}`, the EMA's fixed point).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.curvature.hvp import hvp
from gdflows.curvature.preconditioned import PreconditionedLoss
from gdflows.errors import GDFlowsError
from gdflows.flows._sdcp import psd_part, svec_weights, triu_pairs
from gdflows.flows.central import Central, CentralInfo, Tracked, central, curvature_gradients


def _pair_products(rows):
    """(m, D): the svec-weighted rows x_i * x_j, i <= j, of ``rows`` (k, D): svec(x x^T) per coordinate."""
    k = rows.shape[0]
    i, j = triu_pairs(k)
    return rows[i] * rows[j] * svec_weights(k, rows.dtype)[:, None]


class CentralRMSProp(Central):
    """The central flow of RMSProp at rate ``lr``, EMA decay ``decay`` (beta_2) and ``eps`` (inside the
    square root, as optax's default); build it with :func:`central_rmsprop`."""

    decay: float = eqx.field(static=True, default=0.9)
    eps: float = eqx.field(static=True, default=1e-8)

    def root(self, nu):
        """P = sqrt(nu + eps)."""
        return jnp.sqrt(nu + self.eps)

    def refresh(self, state: Tracked) -> tuple[Tracked, jax.Array, jax.Array]:
        """The basis renewed at (theta, nu): U = P^-1/2 V, V the top-k eigenvectors of P^-1/2 H P^-1/2 (Lanczos
        from the previous basis, dense below DENSE_MAX_D), S rotated into it, J for it."""
        d = 1 / jnp.sqrt(self.root(state.nu))
        block = jnp.sum(state.vectors / d, axis=0, keepdims=True)
        pairs = top_eigenpairs(
            PreconditionedLoss(self.loss, d), state.theta / d, self.k, tol=self.eig_tol, method=self.method, block=block
        )
        V = pairs.vectors / jnp.linalg.norm(pairs.vectors, axis=1, keepdims=True)
        U = V * d
        rotate = (V / d) @ state.vectors.T  # U_new^T P U_old
        J = curvature_gradients(self.loss, state.theta, U)
        renewed = Tracked(state.theta, U, rotate @ state.S @ rotate.T, state.ceiling, J, state.nu)
        return renewed, pairs.hvps, pairs.converged

    def rates(self, state: Tracked) -> tuple[jax.Array, jax.Array, CentralInfo]:
        """(dw/dt, dnu/dt, info) at ``state`` with its basis and J, the SDCP warm-started from ``state.S``."""
        theta, nu, U, J = state.theta, state.nu, state.vectors, state.J
        value, g = jax.value_and_grad(self.loss)(theta)
        HU = jax.vmap(lambda u: hvp(self.loss, theta, u))(U)
        M = (U @ HU.T + HU @ U.T) / 2
        P = self.root(nu)
        N = (U * P) @ U.T
        chol_inv = jnp.linalg.inv(jnp.linalg.cholesky(N))
        lam = jnp.linalg.eigvalsh(chol_inv @ M @ chol_inv.T)[::-1]
        ceiling = jnp.minimum(state.ceiling, jnp.maximum(2 / self.lr, lam[0]))
        r = (1 - self.decay) / (self.decay * self.lr)
        uu, hh = _pair_products(U), _pair_products(HU)
        G = ceiling * uu @ (r * (g**2 - nu) / (2 * P)) + J @ (g / P)
        Q = psd_part(0.5 * (J / P) @ J.T + (ceiling * r / 2) * (uu / P) @ hh.T)
        sol, info = self.oscillation(state, ceiling * N - M, G, Q, value, M, lam, ceiling)
        carried = Tracked(theta, U, info.S, ceiling, J, nu)
        return -(g + 0.5 * J.T @ sol.s) / P, r * (g**2 + hh.T @ sol.s - nu), info, carried

    def field_at(self, state: Tracked):
        w_rate, _, info, carried = self.rates(state)
        return w_rate, info, carried

    def substep(self, state: Tracked) -> tuple[Tracked, CentralInfo]:
        """One Euler substep of dt for w and nu together."""
        w_rate, nu_rate, info, carried = self.rates(state)
        moved = eqx.tree_at(
            lambda s: (s.theta, s.nu), carried, (state.theta + self.dt * w_rate, state.nu + self.dt * nu_rate)
        )
        return moved, info

    def start(self, theta, key=None, nu=None) -> Tracked:
        """GD's start (random basis, S = 0) with RMSProp's EMA at ``nu`` (default g(theta)^2)."""
        nu = jax.grad(self.loss)(theta) ** 2 if nu is None else nu
        return eqx.tree_at(lambda s: s.nu, Central.start(self, theta, key), nu, is_leaf=lambda x: x is None)

    def evaluate(self, theta):
        raise GDFlowsError("RMSProp's central flow moves (theta, nu) together: solve it with gdflows.solve_central")


def central_rmsprop(
    loss: Callable,
    lr,
    decay: float = 0.9,
    eps: float = 1e-8,
    k: int = 5,
    substeps: int = 4,
    method: str = "auto",
    eig_tol: float = 1e-7,
    sdcp_tol: float = 1e-8,
    sdcp_max_iter: int = 2000,
) -> CentralRMSProp:
    """The central flow of RMSProp (``optax.rmsprop(lr, decay, eps)``) on ``loss``; the other arguments are
    :func:`gdflows.flows.central`'s. Solve it with :func:`gdflows.solve_central` (``nu0``: the EMA at the start)."""
    if not 0 < decay < 1:
        raise GDFlowsError(f"decay (RMSProp's beta_2) must be in (0, 1), got {decay!r}")
    if not eps >= 0:
        raise GDFlowsError(f"eps must be >= 0, got {eps!r}")
    gd = central(loss, lr, k, substeps, method, eig_tol, sdcp_tol, sdcp_max_iter)
    fields = {
        name: getattr(gd, name)
        for name in ("loss", "lr", "k", "substeps", "method", "eig_tol", "sdcp_tol", "sdcp_max_iter")
    }
    return CentralRMSProp(**fields, decay=float(decay), eps=float(eps))


def rmsprop_iterates(loss: Callable, theta0, nu0, lr, steps: int, decay: float = 0.9, eps: float = 1e-8):
    """(thetas, nus), each (steps + 1, D): RMSProp as ``optax.rmsprop(lr, decay, eps)`` steps, started from
    the EMA ``nu0`` (optax starts from 0):

    .. math:: \\nu_{n+1} = \\beta_2 \\nu_n + (1 - \\beta_2) g_n^2, \\quad
        \\theta_{n+1} = \\theta_n - h\\, g_n / \\sqrt{\\nu_{n+1} + \\epsilon}.

    The recurrence itself, as :func:`gdflows.gd.gd` is GD's (training loops step optax in
    :mod:`gdflows.experiments.steps`)."""
    grad = jax.grad(loss)

    def step(carry, _):
        theta, nu = carry
        g = grad(theta)
        nu = decay * nu + (1 - decay) * g**2
        theta = theta - lr * g / jnp.sqrt(nu + eps)
        return (theta, nu), (theta, nu)

    nu0 = jnp.asarray(nu0, theta0.dtype)
    _, (thetas, nus) = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))((theta0, nu0))
    return jnp.concatenate([theta0[None], thetas]), jnp.concatenate([nu0[None], nus])


def stable_flow(loss: Callable, theta0, nu0, lr, steps: int, decay: float = 0.9, eps: float = 1e-8, substeps: int = 20):
    """(thetas, nus) at t = n lr, n = 0..steps: RMSProp's stable flow (the central flow with S = 0),
    dw/dt = -g / P, dnu/dt = r (g^2 - nu), by Euler at dt = lr / ``substeps`` (error O(dt))."""
    r, dt = (1 - decay) / (decay * lr), lr / substeps

    def substep(carry, _):
        theta, nu = carry
        g = jax.grad(loss)(theta)
        return (theta - dt * g / jnp.sqrt(nu + eps), nu + dt * r * (g**2 - nu)), None

    def step(carry, _):
        carry = jax.lax.scan(substep, carry, None, length=substeps)[0]
        return carry, carry

    nu0 = jnp.asarray(nu0, theta0.dtype)
    _, (thetas, nus) = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))((theta0, nu0))
    return jnp.concatenate([theta0[None], thetas]), jnp.concatenate([nu0[None], nus])
