"""``gdflows track``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    Command,
    check_choices,
    check_integers,
    check_positive,
    refuse_non_holomorphic,
)
from gdflows.experiments.configs.network import NetworkSetup, track_net
from gdflows.flows import FLOWS

MODELS = (*FLOWS, "quadratic")  # the flows, and GD on the second-order Taylor model at the start
ModelName = Literal[MODELS]


@dataclasses.dataclass
class TrackConfig(Command):
    """Which model of GD (NGF, IGR, third-order, PF, PF+NP, central flow, quadratic model) follows it on a
    network, from GD iterates: for how many steps each stays within 5% of GD.

    Writes <out>/track_distances.csv, track_sharpness.csv, track_summary.csv, track_holding.csv,
    track_starts.csv (resumes start by start), one figure per start and REPORT.md. Typical runtime: 2 to 4
    minutes for the defaults on 2 CPU cores; a width-4 VGG at the edge about 5 CPU-minutes per start.
    """

    runner: ClassVar[str] = "gdflows.experiments.track:run"
    extendable: ClassVar[tuple[str, ...]] = ("starts", "train_steps")  # more starts, or GD run longer, keep those done

    out: Path = Path("runs/track")  # the run folder
    lr: float = 0.25  # GD's learning rate h
    train_steps: int = 3130  # GD steps run first
    # GD steps the flows start from: h*lambda_0 = 1.47 (before EoS), 2.08 (above 2/h, GD not yet
    # oscillating: it follows gradient flow until ~1550), 2.04 (GD oscillating at EoS)
    starts: tuple[int, ...] = (100, 1380, 3120)
    horizon: int = 10  # GD steps each flow is solved over
    net: NetworkSetup = dataclasses.field(default_factory=track_net)
    flows: tuple[ModelName, ...] = MODELS  # the models run from each start
    rtol: float = 1e-8  # flow solve tolerances (float32: e.g. 1e-4 and 1e-6)
    atol: float = 1e-10
    devices: int | None = None  # local devices the data is split across (None: all of them)

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "rtol", "atol"))
        check_integers(self, ("train_steps", "horizon", "devices"), 1)
        check_integers(self, ("starts",), 1)  # GD's period-two average at a start needs the step before
        if not self.starts or max(self.starts) + self.horizon > self.train_steps:
            raise GDFlowsError(
                f"every start + horizon must be <= --train-steps {self.train_steps}, got starts {self.starts} "
                f"and horizon {self.horizon}; raise --train-steps or lower --starts"
            )
        if {"PF", "PF+NP"} & set(self.flows):
            refuse_non_holomorphic(self.net, "the Principal Flow (PF, PF+NP) goes complex")
