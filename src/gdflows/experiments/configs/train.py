"""``gdflows train``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import ClassVar

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    Command,
    OptimizerName,
    check_choices,
    check_edge_at,
    check_integers,
    check_positive,
    refuse_non_holomorphic,
)
from gdflows.experiments.configs.network import NetworkSetup


@dataclasses.dataclass
class TrainConfig(Command):
    """Train a network by GD (full batch or minibatches) with Principal-Flow diagnostics every few steps.

    Writes <out>/metrics.csv (one row per logged step: train and test loss and accuracy, then, on the
    curvature subset (--net.curvature-size images), top eigenvalues, stability coefficients, PF-predicted
    and observed loss change, the PF field's error and convergence), figures/ and REPORT.md. Full-data
    passes go in chunks (--net.chunk-size), split over every local device (--devices). A diverging run
    is a result: its report says where it diverged.
    Rerun the same command to resume after an interruption; a larger --steps extends a finished run.
    Typical runtime: about 2 minutes for the defaults (2,000 steps) on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.train:run"
    extendable: ClassVar[tuple[str, ...]] = ("steps",)  # a larger --steps resumes and extends the run

    out: Path = Path("runs/train")  # the run folder
    net: NetworkSetup = dataclasses.field(default_factory=NetworkSetup)
    lr: float = 0.12  # the rate of GD, and the h of every diagnosis
    steps: int = 2000  # GD steps (raise it on a finished run to extend it)
    optimizer: OptimizerName = "gd"  # a family of gdflows.optim.OPTIMIZERS; the diagnoses always use lr
    momentum: float = 0.9  # the families that take a momentum (momentum, dal_momentum)
    dal_p: float = 1.0  # optimizer dal: h = min(2 / (|Hg|/|g|)^p, max_lr)
    max_lr: float = 5.0  # the cap of the families that pick their own rate (dal*, cdat, polyak)
    batch_size: int = 0  # 0: full batch; a minibatch size must be a multiple of the device count
    devices: int | None = None  # local devices the data is split across (None: all of them)
    log_every: int = 20  # steps between diagnoses
    edge_every: int = 0  # steps between diagnoses once lambda_0 >= edge_at x 2/lr was seen (0: log_every)
    edge_diagnoses: int = 0  # end the run after this many diagnoses from the first at the edge (0: run all steps)
    edge_at: float = 0.98  # lambda_0 / (2/lr) from which a diagnosis counts as at the edge (dense diagnoses)
    k: int = 2  # eigen-directions per diagnosis
    tol: float | None = None  # eigenpair residual and PF-field tolerance (None: max(1e-8, 100 eps) of --net.dtype)
    max_hvps: int = 100  # HVP budget of each Lanczos solve in a diagnosis; one that runs out is flagged
    pf_step: bool = False  # also the PF's own one-step prediction at each diagnosis (integrated; costly)
    hover_tol: float = 0.1  # |sharpness / threshold - 1| allowed over the last third (GD: lambda_0 / (2/lr))
    noise_rtol: float = 1e-6  # observed changes below this fraction of the loss are noise

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "max_lr", "hover_tol", "noise_rtol"))
        check_integers(self, ("steps", "batch_size", "edge_every", "edge_diagnoses"), 0)
        check_integers(self, ("log_every", "k", "devices"), 1)
        check_integers(self, ("max_hvps",), 2)
        if self.tol is not None and (isinstance(self.tol, bool) or not 0 < self.tol < 1):
            raise GDFlowsError(f"--tol must be > 0 and < 1 (a relative tolerance), got {self.tol!r}; e.g. --tol 1e-7")
        check_edge_at(self.edge_at)
        if not 0 <= self.momentum < 1:
            raise GDFlowsError(f"--momentum must be in [0, 1), got {self.momentum!r}")
        if not (math.isfinite(self.dal_p) and self.dal_p >= 0):
            raise GDFlowsError(f"--dal-p must be a finite number >= 0, got {self.dal_p!r}")
        if self.net.n_train is not None and self.batch_size > self.net.n_train:
            raise GDFlowsError(f"--batch-size {self.batch_size} exceeds --net.n-train {self.net.n_train}")
        refuse_non_holomorphic(self.net, "every diagnosis evaluates the Principal Flow")
