"""One status vocabulary for every solver: how a solve ended, and what to do about it.

:func:`gdflows.integrate` (adaptive Runge-Kutta over any flow) and
:func:`gdflows.solve_central` (the central flow's fixed-step solver) report a
:class:`Status`; eigensolves and SDCP solves report per-row ``converged`` flags
that these statuses sum up. A status is never raised: ``status.message`` says
what it means and the fix.
"""

from __future__ import annotations

import enum

SUBSPACE_MARGIN = 0.95  # report when the smallest tracked eigenvalue exceeds this fraction of the ceiling


class Status(enum.StrEnum):
    """Why a solve ended; ``message`` says what it means and what to do."""

    OK = "ok"
    NONFINITE = "nonfinite"
    MAX_STEPS = "max_steps"
    SOLVER_FAILED = "solver_failed"
    FIELD_NOT_CONVERGED = "field_not_converged"
    NOT_CONVERGED = "not_converged"
    SUBSPACE_TOO_SMALL = "subspace_too_small"

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.OK: "solved to the requested tolerances",
    Status.NONFINITE: "the state became non-finite (the flow diverged or its field blew up); "
    "rows from there on are NaN",
    Status.MAX_STEPS: "the solver reached max_steps before the last GD step (a stiff or fast-changing field); "
    "raise max_steps or loosen rtol; rows after the stop are NaN",
    Status.SOLVER_FAILED: "the solver failed; rows after the failure are NaN",
    Status.FIELD_NOT_CONVERGED: "some field evaluations missed their own tolerance (the Krylov PF hit max_size); "
    "raise the flow's max_size or tol",
    Status.NOT_CONVERGED: "some eigensolves or SDCP solves missed their tolerance (see the converged and "
    "sdcp_residual columns); raise sdcp_max_iter or loosen eig_tol/sdcp_tol",
    Status.SUBSPACE_TOO_SMALL: f"the smallest tracked eigenvalue rose above {SUBSPACE_MARGIN:g} x the ceiling, "
    "so an untracked one may exceed it; raise k",
}
