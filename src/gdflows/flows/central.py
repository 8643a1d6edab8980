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

Solver (:func:`solve_central`): fixed Euler substeps dt = tau = h/substeps,
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
renewing them at every substep moved the loss prediction by at most 6.2e-5
(relative) over 1,000 steps on the 433-parameter network of
``benchmarks/central_flow.py``, less than the Euler error (1.9e-4 between 4
and 8 substeps once at the edge), at about half the cost.

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
:class:`CentralStatus` sums up a solve, including when the smallest tracked
eigenvalue came within SUBSPACE_MARGIN of the ceiling (an untracked one may
then exceed it: raise k).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gdflows.curvature.eigen import top_eigenpairs
from gdflows.curvature.hvp import gradient, hvp
from gdflows.errors import GDFlowsError
from gdflows.flows._sdcp import smat, solve_sdcp, svec_weights, triu_pairs
from gdflows.flows.base import FieldInfo, Flow
from gdflows.validation import check_flat, check_loss_at, check_lr, check_steps, is_integer_in

METHODS = ("auto", "dense", "lanczos")
SUBSPACE_MARGIN = 0.95  # report when the smallest tracked eigenvalue exceeds this fraction of the ceiling


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
    ceiling, and the curvature gradients J (m, D) of that basis."""

    theta: jax.Array
    vectors: jax.Array
    S: jax.Array
    ceiling: jax.Array
    J: jax.Array


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
        C = (ceiling * jnp.eye(self.k, dtype=M.dtype) - M) / self.dt + smat(G, self.k)
        scale = jnp.maximum(jnp.linalg.norm(G), jnp.finfo(G.dtype).tiny)
        sol = solve_sdcp(C, 0.5 * J @ J.T, state.S, self.sdcp_tol, self.sdcp_max_iter, scale)
        field = -g - 0.5 * J.T @ sol.s
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
        return field, info, Tracked(theta, U, S, ceiling, J)

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


class StepRecord(eqx.Module):
    """Per GD step n: the state at t = n h and what its ``substeps`` evaluations cost and reached."""

    theta: jax.Array
    loss: jax.Array
    prediction: jax.Array
    eigenvalues: jax.Array
    S: jax.Array
    ceiling: jax.Array
    hvps: jax.Array
    sdcp_iterations: jax.Array
    sdcp_residual: jax.Array
    converged: jax.Array


def _record(info: CentralInfo, theta, infos: CentralInfo, hvps, eig_converged) -> StepRecord:
    """The record of a GD step: values at its first substep, costs over ``infos`` (all its substeps) and
    the basis refresh (``hvps``, ``eig_converged``)."""
    return StepRecord(
        theta=theta,
        loss=info.loss,
        prediction=info.prediction,
        eigenvalues=info.eigenvalues,
        S=info.S,
        ceiling=info.ceiling,
        hvps=hvps + jnp.sum(infos.hvps),
        sdcp_iterations=jnp.sum(infos.sdcp_iterations),
        sdcp_residual=jnp.max(infos.error),
        converged=eig_converged & jnp.all(infos.converged),
    )


def _gd_step(flow: Central, state: Tracked):
    """One GD step of flow time: the basis renewed, then ``substeps`` Euler substeps of dt; returns
    (state, record at its start)."""

    def substep(state, _):
        field, info, carried = flow.field_at(state)
        return eqx.tree_at(lambda s: s.theta, carried, state.theta + flow.dt * field), info

    start = state.theta
    state, hvps, eig_converged = flow.refresh(state)
    state, infos = jax.lax.scan(substep, state, None, length=flow.substeps)
    first = jax.tree.map(lambda x: x[0], infos)
    return state, _record(first, start, infos, hvps, eig_converged)


@eqx.filter_jit
def advance(flow: Central, state: Tracked, steps, rows: int) -> tuple[Tracked, StepRecord]:
    """``steps`` (<= ``rows``) GD steps of the central flow from ``state``: the state after, and
    ``rows`` records, one per step taken (the rest zero). ``steps`` is traced: one compile for any count."""
    shapes = jax.eval_shape(lambda s: _gd_step(flow, s)[1], state)
    records = jax.tree.map(lambda x: jnp.zeros((rows,) + x.shape, x.dtype), shapes)

    def body(n, carry):
        state, records = carry
        state, record = _gd_step(flow, state)
        return state, jax.tree.map(lambda r, x: r.at[n].set(x), records, record)

    return jax.lax.fori_loop(0, steps, body, (state, records))


class CentralStatus(enum.StrEnum):
    """How a central-flow solve went; ``message`` says what it means and what to do."""

    OK = "ok"
    NONFINITE = "nonfinite"
    NOT_CONVERGED = "not_converged"
    SUBSPACE_TOO_SMALL = "subspace_too_small"

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    CentralStatus.OK: "every eigensolve and SDCP met its tolerance, and the tracked subspace held every eigenvalue "
    "near the ceiling",
    CentralStatus.NONFINITE: "the state became non-finite; rows from there on are NaN",
    CentralStatus.NOT_CONVERGED: "some eigensolves or SDCP solves missed their tolerance (see the converged and "
    "sdcp_residual columns); raise sdcp_max_iter or loosen eig_tol/sdcp_tol",
    CentralStatus.SUBSPACE_TOO_SMALL: f"the smallest tracked eigenvalue rose above {SUBSPACE_MARGIN:g} x the ceiling, "
    "so an untracked one may exceed it; raise k",
}


@dataclasses.dataclass(frozen=True)
class CentralSolution:
    """The central flow at t = n h, n = 0..steps (arrays with a leading steps + 1 axis, costs with steps).

    thetas (steps+1, D); loss: L(w); prediction: L + <Sigma, H>/2 (GD's
    time-averaged loss); eigenvalues (steps+1, k): the tracked eigenvalues;
    S (steps+1, k, k); ceiling; hvps, sdcp_iterations (steps,): summed over
    the substeps of each GD step; gradients_per_step and d3_per_step: fixed
    by the discretisation; sdcp_residual (steps,): largest over the substeps;
    converged (steps,); status.
    """

    ts: np.ndarray
    thetas: np.ndarray
    loss: np.ndarray
    prediction: np.ndarray
    eigenvalues: np.ndarray
    S: np.ndarray
    ceiling: np.ndarray
    hvps: np.ndarray
    sdcp_iterations: np.ndarray
    sdcp_residual: np.ndarray
    converged: np.ndarray
    gradients_per_step: int
    d3_per_step: int
    status: CentralStatus

    @property
    def num_field_evals(self) -> int:
        """Field evaluations made (substeps per GD step, plus the last row's)."""
        return int(self.gradients_per_step * (len(self.ts) - 1) + 1)


def _status(records: StepRecord, dim: int) -> CentralStatus:
    if not np.all(np.isfinite(records.theta)):
        return CentralStatus.NONFINITE
    if not np.all(records.converged[:-1]):  # the last row's step is not part of the solve
        return CentralStatus.NOT_CONVERGED
    k = records.eigenvalues.shape[1]
    if k < dim and np.any(records.eigenvalues[:, -1] > SUBSPACE_MARGIN * records.ceiling):
        return CentralStatus.SUBSPACE_TOO_SMALL
    return CentralStatus.OK


def solve_central(
    flow: Central, theta0, steps: int, chunk: int = 100, callback: Callable[[int], None] | None = None, key=None
) -> CentralSolution:
    """Solve ``flow`` from ``theta0`` over ``steps`` GD steps (see the module docstring).

    Runs ``chunk`` GD steps per compiled call and calls ``callback(steps done)``
    after each; stops early once the state is non-finite (later rows NaN).
    ``key`` draws the first Lanczos block.
    """
    if not isinstance(flow, Central):
        raise GDFlowsError(f"solve_central needs a flow from gdflows.flows.central(), got {type(flow).__name__}")
    steps = check_steps(steps)
    theta0 = check_flat(theta0)
    if jnp.iscomplexobj(theta0):
        raise GDFlowsError("the central flow is real: pass real parameters")
    check_loss_at(flow.loss, theta0)
    if not is_integer_in(chunk, 1):
        raise GDFlowsError(f"chunk must be an integer >= 1, got {chunk!r}")
    if flow.k > theta0.shape[0]:
        raise GDFlowsError(f"k = {flow.k} exceeds the dimension D = {theta0.shape[0]}; pass k <= D")
    state, parts, done, finite = flow.start(theta0, key), [], 0, True
    while done <= steps and finite:  # the last call also records the final state (the step it takes is dropped)
        n = min(chunk, steps + 1 - done)
        state, records = advance(flow, state, jnp.asarray(n), chunk)
        parts.append(jax.tree.map(lambda x, n=n: np.asarray(x)[:n], records))
        done += n
        finite = bool(np.all(np.isfinite(parts[-1].theta)))
        if callback is not None:
            callback(min(done, steps))
    records = _nan_rows_to(jax.tree.map(lambda *xs: np.concatenate(xs), *parts), steps + 1)
    m = flow.k * (flow.k + 1) // 2
    costs = jax.tree.map(lambda x: x[:-1], records)
    return CentralSolution(
        ts=np.arange(steps + 1) * float(flow.lr),
        thetas=records.theta,
        loss=records.loss,
        prediction=records.prediction,
        eigenvalues=records.eigenvalues,
        S=records.S,
        ceiling=records.ceiling,
        hvps=costs.hvps,
        sdcp_iterations=costs.sdcp_iterations,
        sdcp_residual=costs.sdcp_residual,
        converged=costs.converged,
        gradients_per_step=flow.substeps,
        d3_per_step=m,
        status=_status(records, theta0.shape[0]),
    )


def _nan_rows_to(records: StepRecord, rows: int) -> StepRecord:
    """``records`` filled up to ``rows`` rows with NaN (False for flags): the rows after a non-finite state."""

    def pad(x):
        missing = rows - x.shape[0]
        if missing <= 0:
            return x
        shape = (missing,) + x.shape[1:]
        return np.concatenate([x, np.zeros(shape, bool) if x.dtype == bool else np.full(shape, np.nan)])

    return jax.tree.map(pad, records)
