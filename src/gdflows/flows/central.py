r"""The central flow (Cohen, Damian et al., ICLR 2025): GD at the edge of stability, time-averaged.

In flow time t = n h (docs/theory.md, section 9):

.. math::

    \dot w = -\Big[g(w) + \tfrac12 \nabla_w \langle \Sigma, H(w)\rangle\Big],
    \qquad \Sigma = U S U^\top,

with U (D x k, orthonormal) spanning the top-k eigenspace of H(w), the
**tracked subspace**, and S (k x k, PSD) the oscillation covariance in it.
With :math:`J_{jl} = \nabla_w (u_j^\top H(w) u_l)` (U held fixed),
:math:`\nabla\langle\Sigma, H\rangle = \sum_{jl} S_{jl} J_{jl}`. S solves the
semidefinite complementarity problem (:mod:`gdflows.flows._sdcp`)

.. math::

    S \succeq 0,\quad A(S) \succeq 0,\quad \langle S, A(S)\rangle = 0,\qquad
    A(S) = \frac{c\,I - U^\top H U}{\tau} + G + \tfrac12 B(S),

:math:`G_{jl} = J_{jl}\cdot g`, :math:`B(S)_{jl} = J_{jl}\cdot\sum_{pq} S_{pq} J_{pq}`,
so that :math:`G + \tfrac12 B(S) = \tfrac{d}{dt}(c I - U^\top H U)`. A(S) is
the gap between the ceiling c and the tracked curvature predicted one
relaxation time tau ahead: no tracked eigenvalue is predicted above c, and
the oscillation acts only where the gap would otherwise close. S is a full
matrix on the subspace, so the problem does not depend on the basis chosen
in it: a near-double eigenvalue at 2/h, whose eigenvectors are ill-defined,
poses no difficulty. Far below the ceiling a direction's gap/tau is large
and S vanishes there; with no eigenvalue near c, S = 0 and the flow is
gradient flow.

Solver (:func:`gdflows.solve_central`): fixed Euler substeps dt = tau = h/substeps,
the authors' discretisation (the predicted gap after each substep stays
PSD). The error is O(dt); it is controlled by ``substeps`` and measured by
solving again with twice as many (``benchmarks/central_flow.py``). The
solver carries the tracked subspace, renewed once per GD step by a top-k
eigensolve (Lanczos started from the sum of the previous basis; the dense
Hessian below :data:`gdflows.curvature.DENSE_MAX_D`), the previous S (the
SDCP's warm start, rotated into the new basis) and the ceiling. Within a GD
step the basis and J (its k(k+1)/2 third-derivative products) are held,
and U^T H U is evaluated at every substep (k HVPs), so the gap matrix is
exact for the basis used. Holding U and J over a GD step instead of
renewing them at every substep changes the loss prediction by less than the
Euler error, at about half the cost (``benchmarks/central_flow.py`` measures
both).

The ceiling c is 2/h from any start below the edge. A start with lambda_0 > 2/h
(GD has not begun to oscillate yet) keeps its excess: c starts at lambda_0
and is the running minimum of max(2/h, lambda_0) along the flow, so the flow
never rises further and follows lambda_0 down, without a jump.
:meth:`Central.evaluate` (the memoryless field that
:func:`gdflows.integrate` sees) uses c = max(2/h, lambda_0(w)), a cold
eigensolve and no warm start.

Loss prediction: GD's time-averaged loss is
:math:`L(w) + \tfrac12\langle\Sigma, H\rangle = L + \tfrac12\langle S, U^\top H U\rangle`,
i.e. L + tr(S)/h where the tracked eigenvalues sit at 2/h.

Status: every eigensolve and SDCP reports whether it met its tolerance;
the solver (:mod:`gdflows.central_solver`) sums up a solve in a
:class:`gdflows.Status`, including when the smallest tracked
eigenvalue came within SUBSPACE_MARGIN of the ceiling (an untracked one may
then exceed it: raise k).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from gdflows.curvature.eigen import METHODS, top_eigenpairs
from gdflows.curvature.hvp import gradient, hvp
from gdflows.errors import GDFlowsError
from gdflows.flows._sdcp import smat, solve_sdcp, svec_weights, triu_pairs
from gdflows.flows.base import FieldInfo, Flow
from gdflows.validation import check_flat, check_lr, is_integer_in


class CentralInfo(FieldInfo):
    """What one field evaluation did.

    converged: the SDCP (and the eigensolve, where the evaluation renewed
    the basis) met its tolerance; error: the SDCP's natural residual
    (relative); eigenvalues (k,): those of U^T H U, largest first; S (k, k):
    the covariance in the basis U; prediction: L + <Sigma, H>/2; hvps: HVPs
    used (k for U^T H U, plus the eigensolve's where the basis was renewed:
    D on the dense path); sdcp_iterations: FISTA iterations; ceiling: c.
    """

    eigenvalues: jax.Array
    S: jax.Array
    loss: jax.Array
    prediction: jax.Array
    hvps: jax.Array
    sdcp_iterations: jax.Array
    eig_converged: jax.Array
    ceiling: jax.Array


class Tracked(eqx.Module):
    """What the solver carries between substeps: the state, the subspace basis U (k, D), S in it, the
    ceiling, the curvature gradients J (m, D) of that basis, and the optimizer's own state where it has one
    (RMSProp's nu, :mod:`gdflows.flows.central_rmsprop`; None for GD)."""

    theta: jax.Array
    vectors: jax.Array
    S: jax.Array
    ceiling: jax.Array
    J: jax.Array
    nu: jax.Array | None = None


def curvature_gradients(loss: Callable, theta, vectors):
    """J (m, D): rows grad_w (u_j^T H(w) u_l) for j <= l (svec order, off-diagonal rows times sqrt 2)."""
    k = vectors.shape[0]
    i, j = triu_pairs(k)
    vectors = jax.lax.stop_gradient(vectors)

    def row(u, v):
        return gradient(lambda x: jnp.dot(u, hvp(loss, x, v)))(theta)

    return jax.vmap(row)(vectors[i], vectors[j]) * svec_weights(k, theta.dtype)[:, None]


class Central(Flow):
    """The central flow of ``loss`` at learning rate ``lr`` with k tracked directions; build it with :func:`central`."""

    loss: Callable
    lr: jax.Array
    k: int = eqx.field(static=True, default=5)
    substeps: int = eqx.field(static=True, default=4)
    method: str = eqx.field(static=True, default="auto")
    eig_tol: float = eqx.field(static=True, default=1e-7)
    sdcp_tol: float = eqx.field(static=True, default=1e-8)
    sdcp_max_iter: int = eqx.field(static=True, default=2000)

    @property
    def dt(self):
        """The substep, also the relaxation time tau of the gap."""
        return self.lr / self.substeps

    def refresh(self, state: Tracked) -> tuple[Tracked, jax.Array, jax.Array]:
        """The tracked basis renewed at ``state.theta``: top-k eigenvectors by Lanczos from the sum of the
        previous basis (dense below DENSE_MAX_D), S rotated into it, J evaluated for it.
        Returns (state, HVPs, converged)."""
        block = jnp.sum(state.vectors, axis=0, keepdims=True)
        pairs = top_eigenpairs(self.loss, state.theta, self.k, tol=self.eig_tol, method=self.method, block=block)
        U = pairs.vectors / jnp.linalg.norm(pairs.vectors, axis=1, keepdims=True)
        rotate = U @ state.vectors.T
        J = curvature_gradients(self.loss, state.theta, U)
        renewed = Tracked(state.theta, U, rotate @ state.S @ rotate.T, state.ceiling, J)
        return renewed, pairs.hvps, pairs.converged

    def field_at(self, state: Tracked) -> tuple[jax.Array, CentralInfo, Tracked]:
        """The field at ``state.theta`` with the basis and J of ``state`` (renewed once per GD step), the
        SDCP warm-started from ``state.S``. Returns (field, info, carried state).

        U^T H U is evaluated here (k HVPs): the gap matrix is exact for the basis used, which only needs
        to span the top-k eigenspace.
        """
        theta, U, J = state.theta, state.vectors, state.J
        value, g = jax.value_and_grad(self.loss)(theta)
        M = U @ jax.vmap(lambda u: hvp(self.loss, theta, u))(U).T
        M = (M + M.T) / 2
        lam = jnp.linalg.eigvalsh(M)[::-1]
        ceiling = jnp.minimum(state.ceiling, jnp.maximum(2 / self.lr, lam[0]))
        G = J @ g
        gap = ceiling * jnp.eye(self.k, dtype=M.dtype) - M
        sol, info = self.oscillation(state, gap, G, 0.5 * J @ J.T, value, M, lam, ceiling)
        field = -g - 0.5 * J.T @ sol.s
        return field, info, Tracked(theta, U, info.S, ceiling, J)

    def oscillation(self, state: Tracked, gap, G, Q, value, M, lam, ceiling):
        """(SDCP solution, info): the oscillation covariance S >= 0 complementary to
        A(S) = gap / dt + smat(G) + Q(S) >= 0 (``gap``: c times the metric minus U^T H U), warm-started
        from ``state.S``; the predicted loss is E + <S, U^T H U> / 2."""
        C = gap / self.dt + smat(G, self.k)
        scale = jnp.maximum(jnp.linalg.norm(G), jnp.finfo(G.dtype).tiny)
        sol = solve_sdcp(C, Q, state.S, self.sdcp_tol, self.sdcp_max_iter, scale)
        S = smat(sol.s, self.k)
        info = CentralInfo(
            converged=sol.converged,
            error=sol.residual,
            eigenvalues=lam,
            S=S,
            loss=value,
            prediction=value + 0.5 * jnp.sum(S * M),
            hvps=jnp.asarray(self.k),
            sdcp_iterations=sol.iterations,
            eig_converged=jnp.asarray(True),
            ceiling=ceiling,
        )
        return sol, info

    def substep(self, state: Tracked) -> tuple[Tracked, CentralInfo]:
        """One Euler substep of dt from ``state``: theta <- theta + dt * field."""
        field, info, carried = self.field_at(state)
        return eqx.tree_at(lambda s: s.theta, carried, state.theta + self.dt * field), info

    def start(self, theta, key=None) -> Tracked:
        """The carried state at a start: a random basis, S = 0, no ceiling yet (set by the first evaluation)."""
        key = jax.random.PRNGKey(0) if key is None else key
        vectors = jax.random.normal(key, (self.k, theta.shape[0]), theta.dtype)
        vectors = jnp.linalg.qr(vectors.T)[0].T
        pairs = self.k * (self.k + 1) // 2
        zero = jnp.zeros((self.k, self.k), theta.dtype)
        return Tracked(
            theta, vectors, zero, jnp.asarray(jnp.inf, theta.dtype), jnp.zeros((pairs, theta.size), theta.dtype)
        )

    @eqx.filter_jit
    def evaluate(self, theta) -> tuple[jax.Array, CentralInfo]:
        """The memoryless field: cold eigensolve, S from zero, ceiling max(2/h, lambda_0(theta))."""
        state, hvps, converged = self.refresh(self.start(check_flat(theta, "theta")))
        field, info, _ = self.field_at(state)
        info = eqx.tree_at(
            lambda i: (i.hvps, i.eig_converged, i.converged),
            info,
            (info.hvps + hvps, converged, converged & info.converged),
        )
        return field, info


def central(
    loss: Callable,
    lr,
    k: int = 5,
    substeps: int = 4,
    method: str = "auto",
    eig_tol: float = 1e-7,
    sdcp_tol: float = 1e-8,
    sdcp_max_iter: int = 2000,
) -> Central:
    """The central flow of ``loss`` at learning rate ``lr``.

    ``k``: tracked eigendirections (the top-k eigenspace; take k above the
    number of eigenvalues that reach 2/h); ``substeps``: Euler substeps per
    GD step (dt = tau = lr/substeps); ``method``: eigenpairs "dense",
    "lanczos" or "auto" (:func:`gdflows.curvature.use_dense`); ``eig_tol``:
    relative residual of the eigenpairs; ``sdcp_tol``/``sdcp_max_iter``: the
    SDCP's residual tolerance and iteration budget.
    """
    h = check_lr(lr)
    if not is_integer_in(k, 1):
        raise GDFlowsError(f"k (number of tracked eigendirections) must be an integer >= 1, got {k!r}")
    if not is_integer_in(substeps, 1):
        raise GDFlowsError(f"substeps must be an integer >= 1 (Euler substeps per GD step), got {substeps!r}")
    if method not in METHODS:
        raise GDFlowsError(f"method must be one of {METHODS}, got {method!r}")
    for name, tol in (("eig_tol", eig_tol), ("sdcp_tol", sdcp_tol)):
        if not 0 < tol < 1:
            raise GDFlowsError(f"{name} must be in (0, 1), got {tol!r}")
    if not is_integer_in(sdcp_max_iter, 1):
        raise GDFlowsError(f"sdcp_max_iter must be an integer >= 1, got {sdcp_max_iter!r}")
    tols = (float(eig_tol), float(sdcp_tol), int(sdcp_max_iter))
    return Central(loss, jnp.asarray(h), int(k), int(substeps), method, *tols)
