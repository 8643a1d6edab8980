"""``gdflows eos-conv``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    Command,
    ConvModel,
    EosConvSize,
    check_choices,
    check_integers,
    check_positive,
    refuse_non_holomorphic,
)
from gdflows.experiments.configs.network import NetworkSetup

# --size accelerator: what it replaces in EosConvConfig (sized for one H100-class GPU, float64): 5x the images,
# 3.3x the steps, the same nets and rates (lambda_0 at initialisation hardly depends on the subset's size)
EOS_CONV_ACCELERATOR = {"net": dict(n_train=5000, n_test=2000), "run": dict(steps=1000, log_every=25)}


def _eos_conv_net() -> NetworkSetup:
    """eos-conv's data and nets (CPU size): 1,000 Fashion-MNIST images pooled to 14x14, width-4 tanh conv nets."""
    return NetworkSetup(dataset="fashion_mnist", n_train=1000, n_test=500, model="vgg", width=4)


@dataclasses.dataclass
class EosConvConfig(Command):
    """The edge of stability on conv nets: full-batch GD on VGG- and ResNet-style nets on Fashion-MNIST, two rates each.

    Writes one `gdflows train` run per (model, rate) in <out>/<model>_lr<rate>/ (metrics.csv, figures, REPORT.md),
    then <out>/summary.csv (per run: h lambda_0 at the start and the end, the first step at the edge, the PF's
    dE/dt sign agreement beside its majority-sign baseline, Re(sc_0), the verdict), figures/ and REPORT.md.
    Typical runtime: about 40 CPU-minutes for the defaults (--size cpu, 1,000 images; 20 to 40 minutes on 2 cores);
    --size accelerator (5,000 images, 1,000 steps) is for one GPU.
    """

    runner: ClassVar[str] = "gdflows.experiments.eos_conv:run"

    out: Path = Path("runs/eos_conv")  # the run folder
    size: EosConvSize = "cpu"  # accelerator: 5,000 images, 1,000 steps (replaces net.n-train, net.n-test, steps...)
    models: tuple[ConvModel, ...] = ("vgg", "resnet")
    vgg_lrs: tuple[float, ...] = (0.1, 0.12)  # GD rates of the VGG-style net (lambda_0 = 16.4 at initialisation)
    resnet_lrs: tuple[float, ...] = (0.15, 0.18)  # GD rates of the ResNet-style net (lambda_0 = 10.9 at initialisation)
    steps: int = 300  # full-batch GD steps per run
    log_every: int = 25  # steps between PF diagnoses
    net: NetworkSetup = dataclasses.field(default_factory=_eos_conv_net)  # data and nets; --models sets the model
    k: int = 2  # eigen-directions per diagnosis
    tol: float = 1e-7  # eigenpair residual and PF-field tolerance
    max_hvps: int = 100  # HVP budget of each Lanczos solve in a diagnosis
    hover_tol: float = 0.1  # |lambda_0 / (2/lr) - 1| allowed over the last third
    noise_rtol: float = 1e-6  # observed changes below this fraction of the loss are noise

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("vgg_lrs", "resnet_lrs", "tol", "hover_tol", "noise_rtol"))
        check_integers(self, ("steps", "log_every", "k"), 1)
        check_integers(self, ("max_hvps",), 2)
        if not self.models:
            raise GDFlowsError("--models needs at least one of: vgg, resnet")
        for model in self.models:
            if not getattr(self, f"{model}_lrs"):
                raise GDFlowsError(f"--{model}-lrs needs at least one rate, e.g. --{model}-lrs 0.3 0.5")
        if self.steps < 3 * self.log_every:
            raise GDFlowsError(
                f"--steps {self.steps} gives fewer than 3 diagnoses at --log-every {self.log_every}; "
                f"raise --steps to at least {3 * self.log_every} or lower --log-every"
            )
        refuse_non_holomorphic(self.net, "every diagnosis evaluates the Principal Flow")

    def identity(self) -> EosConvConfig:
        return self.resolved()

    def resolved(self) -> EosConvConfig:
        """The config actually run: ``--size accelerator`` applied."""
        if self.size == "cpu":
            return self
        net = dataclasses.replace(self.net, **EOS_CONV_ACCELERATOR["net"])
        return dataclasses.replace(self, **EOS_CONV_ACCELERATOR["run"], net=net, size="cpu")
