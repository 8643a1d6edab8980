"""``gdflows pf-validity``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    PF_H_LAMBDAS,
    PF_PROBLEMS,
    Command,
    PFProblem,
    check_choices,
    check_integers,
    check_positive,
)


@dataclasses.dataclass
class PFValidityConfig(Command):
    """For how many GD steps the PF follows GD, against h lambda_0, on the sharp dip and a small tanh MLP.

    Writes <out>/pf_validity.csv (per problem, h lambda_0 and step: GD, the PF, their distance, |Im|),
    pf_validity_summary.csv (steps followed within 5% and 20%), figures/pf_validity.png and REPORT.md.
    Typical runtime: about 1 to 2 minutes for the defaults on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.pf_validity:run"

    out: Path = Path("runs/pf_validity")  # the run folder
    h_lambdas: tuple[float, ...] = PF_H_LAMBDAS  # h lambda_0 at the start, one GD run and PF solve each
    steps: int = 12  # GD steps
    mlp_width: int = 2  # hidden width of the tanh MLP problem
    rtol: float = 1e-6  # PF solve tolerances (far below the tolerances measured)
    atol: float = 1e-9
    max_steps: int = 512  # a solve that stalls (h lambda crossing 1 off the real axis) stops here, as lost
    problems: tuple[PFProblem, ...] = PF_PROBLEMS

    def validate(self) -> None:
        check_choices(self)
        check_positive(self, ("rtol", "atol", "h_lambdas"))
        check_integers(self, ("steps", "mlp_width", "max_steps"), 1)
        if not self.h_lambdas or not self.problems:
            raise GDFlowsError("--h-lambdas and --problems each need at least one value")
