"""``gdflows central``."""

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


@dataclasses.dataclass
class CentralConfig(Command):
    """GD, gradient flow and the central flow side by side from initialisation, on a network at the edge of stability.

    With --optimizer rmsprop: full-batch RMSProp (optax's, EMA decay --decay, from nu0 = g(theta0)^2), its
    stable flow (the central flow with Sigma = 0) and RMSProp's central flow, judged by the same claims
    against the preconditioned sharpness's threshold 2/lr.
    Writes <out>/central_steps.csv (per GD step: GD's raw and time-averaged loss, gradient flow's
    loss, the central flow's loss and prediction L + <Sigma, H>/2, top eigenvalues), central_calls.csv
    (cost per compiled chunk), central_metrics.csv, central_claims.csv (four claims, each judged),
    figures/loss.png, figures/sharpness.png and REPORT.md.
    Typical runtime: about 2 to 3 minutes for the defaults on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.central:run"

    out: Path = Path("runs/central")  # the run folder
    optimizer: Literal["gd", "rmsprop"] = "gd"  # the full-batch optimizer whose central flow is compared
    decay: float = 0.9  # RMSProp's EMA decay beta_2 (--optimizer rmsprop)
    lr: float = 0.3  # h lambda_0 = 1.89 at initialisation: EoS from step ~560, a second eigenvalue from ~890
    steps: int = 3000  # GD steps
    k: int = 4  # tracked eigendirections of the central flow
    substeps: int = 4  # Euler substeps per GD step
    window: int = 301  # centred moving average of GD (odd): GD's oscillation bursts come ~180 steps apart here
    sharpness_every: int = 25  # GD's top-k eigenvalues every this many steps
    chunk: int = 100  # GD steps per compiled call of the central-flow solver (the unit of its timing)
    gf_rtol: float = 1e-8  # gradient-flow (NGF) solve tolerances
    gf_atol: float = 1e-10
    net: NetworkSetup = dataclasses.field(default_factory=lambda: track_net())
    devices: int | None = None  # local devices the data is split across (None: all of them)

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "gf_rtol", "gf_atol"))
        if not 0 < self.decay < 1:
            raise GDFlowsError(f"--decay (RMSProp's beta_2) must be in (0, 1), got {self.decay}; e.g. --decay 0.9")
        check_integers(self, ("steps", "k", "substeps", "sharpness_every", "chunk", "window", "devices"), 1)
        if self.window % 2 == 0:
            raise GDFlowsError(f"--window must be odd (a centred average), got {self.window}; e.g. --window 301")
        if self.steps < self.window:
            raise GDFlowsError(f"--steps ({self.steps}) must be >= --window ({self.window}); raise --steps")
        refuse_non_holomorphic(self.net, "the central flow differentiates the loss three times")
