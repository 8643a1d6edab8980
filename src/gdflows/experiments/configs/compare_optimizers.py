"""``gdflows compare-optimizers``."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import ClassVar

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    Command,
    CompareModel,
    CompareScale,
    DType,
    HGMode,
    LossName,
    RegimeName,
    check_choices,
    check_integers,
    check_positive,
)

QUICK_SCALE = dict(seeds=1, steps=20, mlp_n_train=128, cnn_n_train=64, batch_size=32, log_every=5)
QUICK_METHODS = ("gd_lr0.1", "dal_p1_hvp", "dal_p1_fd", "dal_p1_secant", "polyak", "adam_lr0.001", "dal_adam")


@dataclasses.dataclass
class CompareOptimizersConfig(Command):
    """DAL against the field: DAL-p, DAL-momentum, DAL-Adam vs tuned SGD, momentum, Adam, Prodigy, DoG, Polyak,
    schedule-free and CDAT.

    --scale tuned / tuned_full: the same nets, larger, on 10,000 / 50,000 training images with a validation
    split and the full test set, 10 / 20 epochs; every rate-like hyperparameter (and DAL's p) tuned on the same
    5-point log grid on the validation split, the tuning-free group at its defaults, rate multipliers, and DAL's
    four claims as verdicts (--scale tuned: about 200 CPU minutes, 2 hours wall on 2 cores).
    --scale cpu (default) / full: VGG- and ResNet-style nets on Fashion-MNIST (a 5,000-image 14x14 subset /
    all 60,000 images at 28x28), minibatches, several epochs, 3 seeds; test accuracy and loss as mean +- std at
    equal epochs and at equal wall-clock time, FLOPs per step, curves, verdicts. --scale <number>: the
    MNIST-subset comparison (tanh MLP and CNN, full batch and minibatch, steps and sizes times that number).
    Writes <out>/results.csv (one row per run), curves.csv, summary.csv (table.csv and table.md at cpu/full),
    figures and REPORT.md; a rerun skips the runs already in results.csv. Typical runtime on 2 CPU cores:
    --scale cpu 16 CPU minutes (27 wall on a loaded machine); --scale full needs an accelerator; --scale 1
    roughly an hour (264 runs); --quick about 2 minutes.
    """

    runner: ClassVar[str] = "gdflows.experiments.optimizers.compare:run"

    out: Path = Path("runs/compare_optimizers")  # the run folder
    scale: CompareScale | float = "cpu"  # cpu, full (conv nets on Fashion-MNIST), smoke (tests), or a number
    data_dir: Path | None = None  # Fashion-MNIST IDX folder (default: $GDFLOWS_DATA, then Debian's package)
    epochs: int | None = None  # epochs per run at cpu/full/smoke (None: the scale's)
    seeds: int = 3  # runs per (model, regime, method)
    methods: tuple[str, ...] = ()  # run only these method names (empty: all)
    # The fields below set the MNIST-subset comparison (--scale <number>) only.
    models: tuple[CompareModel, ...] = ("mlp", "cnn")
    regimes: tuple[RegimeName, ...] = ("full", "minibatch")
    steps: int = 200  # steps per run
    mlp_n_train: int = 500
    cnn_n_train: int = 256
    cnn_downsample: int = 2  # average-pool the CNN's images by this factor (CPU budget)
    batch_size: int = 64  # minibatch regime
    log_every: int = 10  # steps between full-loss evaluations
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # fixed GD/SGD rates
    ps: tuple[float, ...] = (0.5, 1.0, 2.0)  # DAL-p exponents
    hg_modes: tuple[HGMode, ...] = ("hvp", "fd", "secant")  # how DAL gets H g
    max_lr: float = 5.0  # DAL's (and Polyak's) largest rate
    secant_lr: float = 0.01  # the secant's first step, before it has a gradient pair
    momentum_lr: float = 0.03
    adam_lr: float = 1e-3
    loss: LossName = "mse"
    loss_target: float = 0.15  # steps to reach this training loss are reported
    lambda_tol: float = 1e-4  # relative residual of lambda_0 at each logged point
    dtype: DType = "float32"
    quick: bool = False  # tiny CPU check of the MNIST-subset comparison (implies --scale 1): 1 seed, 20 steps

    def validate(self) -> None:
        check_choices(self)
        check_integers(self, ("seeds", "steps", "mlp_n_train", "cnn_n_train", "cnn_downsample"), 1)
        check_integers(self, ("batch_size", "log_every"), 1)
        check_positive(self, ("lrs", "max_lr", "secant_lr", "momentum_lr", "adam_lr", "loss_target"))
        check_positive(self, ("lambda_tol",))
        check_integers(self, ("epochs",), 1)
        if any(not (math.isfinite(p) and p >= 0) for p in self.ps):
            raise GDFlowsError(f"--ps must be finite numbers >= 0, got {self.ps}")
        self.check_scale()

    @property
    def at_scale(self) -> bool:
        """True for the conv nets on Fashion-MNIST (--scale cpu, full, smoke); False for a number."""
        return isinstance(self.scale, str)

    def check_scale(self) -> None:
        """--scale is a name of :data:`CompareScale` or a number > 0; --quick belongs to the number."""
        names = typing.get_args(CompareScale)
        if isinstance(self.scale, str) and self.scale not in names:
            raise GDFlowsError(
                f"--scale {self.scale!r} is unknown; use one of {', '.join(names)} or a number > 0 (MNIST subset)"
            )
        if not isinstance(self.scale, str):
            check_positive(self, ("scale",))
        if self.methods and str(self.scale).startswith("tuned"):
            raise GDFlowsError(f"--scale {self.scale} runs the tuning protocol's methods; drop --methods")
        if self.quick and self.at_scale and self.scale != "cpu":
            raise GDFlowsError(f"--quick is the tiny MNIST-subset check; drop --quick or --scale {self.scale}")

    def identity(self) -> CompareOptimizersConfig:
        return self.resolved()

    def resolved(self) -> CompareOptimizersConfig:
        """The config actually run: ``quick`` and ``scale`` applied."""
        cfg = self
        if cfg.quick:
            quick = dict(QUICK_SCALE, methods=cfg.methods or QUICK_METHODS, quick=False)
            cfg = dataclasses.replace(cfg, **quick, scale=cfg.scale if not cfg.at_scale else 1.0)
        if not cfg.at_scale and cfg.scale != 1.0:
            s = cfg.scale
            cfg = dataclasses.replace(
                cfg,
                steps=max(cfg.log_every, round(cfg.steps * s)),
                mlp_n_train=max(10, round(cfg.mlp_n_train * s)),
                cnn_n_train=max(10, round(cfg.cnn_n_train * s)),
                scale=1.0,
            )
        return cfg
