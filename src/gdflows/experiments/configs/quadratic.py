"""``gdflows quadratic``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.experiments.configs.base import (
    Command,
    check_integers,
    check_positive,
)


@dataclasses.dataclass
class QuadraticConfig(Command):
    """The authors' reference quadratic: every flow against GD at h = 0.5, 0.9, 1.0, 1.05.

    Writes <out>/quadratic_distances.csv, quadratic_paths.csv, quadratic_summary.csv, four figures and
    REPORT.md. Typical runtime: about a minute on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.quadratic:run"

    out: Path = Path("runs/quadratic")  # the run folder
    rtol: float = 1e-12  # flow solve tolerances
    atol: float = 1e-14
    substeps: int = 8  # saved points per GD step (for the path figures)

    def validate(self) -> None:
        check_positive(self, ("rtol", "atol"))
        check_integers(self, ("substeps",), 1)
