"""``gdflows drift``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.experiments.configs.base import (
    Command,
    check_integers,
    check_positive,
)
from gdflows.experiments.configs.network import NetworkSetup


@dataclasses.dataclass
class DriftConfig(Command):
    """Per-step drift |theta_(n+1) - NGF(h; theta_n)| of GD against (h^2/2)|Hg| on a network, at several rates.

    Writes <out>/drift.csv, drift_summary.csv (correlation of the two), figures/drift.png and REPORT.md.
    Typical runtime: about a minute for the defaults on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.drift:run"

    out: Path = Path("runs/drift")  # the run folder
    net: NetworkSetup = dataclasses.field(default_factory=NetworkSetup)
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1)  # learning rates h
    steps: int = 300  # GD steps per rate
    every: int = 15  # drift measured at steps 0, every, 2 every, ...
    rtol: float = 1e-10  # NGF solve tolerances (far below the drift)
    atol: float = 1e-12
    devices: int | None = None  # local devices the data is split across (None: all of them)

    def validate(self) -> None:
        self.net.validate()
        check_positive(self, ("lrs", "rtol", "atol"))
        check_integers(self, ("steps", "every", "devices"), 1)
