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
    check_edge_at,
    check_integers,
    check_positive,
    refuse_non_holomorphic,
)
from gdflows.experiments.configs.network import NetworkSetup

# --size accelerator: what it replaces in EosConvConfig (sized for one H100-class GPU, float64): 5x the images,
# 3.3x the steps, the same nets and rates (lambda_0 at initialisation hardly depends on the subset's size)
EOS_CONV_ACCELERATOR = {"net": dict(n_train=5000, n_test=2000), "run": dict(steps=8000)}


def _eos_conv_net() -> NetworkSetup:
    """eos-conv's data and nets (CPU size): 1,000 Fashion-MNIST images pooled to 14x14, width-4 tanh conv nets,
    float32 (the diagnoses' tolerance follows: --tol 1e-4)."""
    return NetworkSetup(dataset="fashion_mnist", n_train=1000, n_test=500, model="vgg", width=4, dtype="float32")


@dataclasses.dataclass
class EosConvConfig(Command):
    """The edge of stability on conv nets, as Cohen et al. (2021) set it up: full-batch GD on VGG- and
    ResNet-style nets on Fashion-MNIST from rates where h lambda_0 <= 1 at initialisation, three seeds each.

    Writes one `gdflows train` run per (model, rate, seed) in <out>/<model>_lr<rate>_s<seed>/ (metrics.csv,
    figures, REPORT.md), diagnosed every --log-every steps until lambda_0 first reaches edge_at x 2/h and
    every --edge-every steps from then on; then <out>/summary.csv (per run: h lambda_0 at initialisation and at
    the end, the first step at the edge, the band lambda_0 / (2/h) stays in after it, the diagnoses at the edge),
    predictors.csv (every predictor of the loss change's sign per net and rate, the seeds pooled, with
    intervals and the paired rule), figures/ and REPORT.md.
    Typical runtime: about 6 CPU-minutes per run at the defaults (--size cpu); --size accelerator
    (5,000 images) is for one GPU.
    """

    runner: ClassVar[str] = "gdflows.experiments.eos_conv:run"
    # a larger --steps extends every run (resumed, not redone); more models, rates or seeds add runs
    extendable: ClassVar[tuple[str, ...]] = ("steps", "models", "vgg_lrs", "resnet_lrs", "seeds")

    out: Path = Path("runs/eos_conv")  # the run folder
    size: EosConvSize = "cpu"  # accelerator: 5,000 images (replaces net.n-train, net.n-test, steps, log-every)
    models: tuple[ConvModel, ...] = ("vgg", "resnet")
    vgg_lrs: tuple[float, ...] = (0.026, 0.028, 0.03)  # VGG rates (lambda_0 at initialisation: 10-33 over seeds)
    resnet_lrs: tuple[float, ...] = (0.021, 0.023, 0.025)  # ResNet rates (lambda_0 at initialisation: 35-40)
    seeds: tuple[int, ...] = (0, 1, 2)  # initialisations per rate
    steps: int = 8000  # the step budget of each run
    log_every: int = 100  # steps between diagnoses before the edge
    edge_every: int = 2  # steps between diagnoses once lambda_0 reached the edge
    edge_diagnoses: int = 100  # a run ends after this many diagnoses from the first at the edge
    edge_at: float = 0.98  # the edge: lambda_0 >= edge_at x 2/h (dense diagnoses from the first such step)
    net: NetworkSetup = dataclasses.field(default_factory=_eos_conv_net)  # data and nets; --models sets the model
    k: int = 1  # eigen-directions per diagnosis
    tol: float = 1e-4  # eigenpair residual and PF-field tolerance
    max_hvps: int = 100  # HVP budget of each Lanczos solve in a diagnosis
    pf_step: bool = False  # also the PF's own one-step prediction at each diagnosis (integrated; costly)
    hover_tol: float = 0.1  # hovering: within hover_tol of 2/h from the first step at the edge on
    noise_rtol: float = 1e-6  # observed changes below this fraction of the loss are noise

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("vgg_lrs", "resnet_lrs", "tol", "hover_tol", "noise_rtol"))
        check_edge_at(self.edge_at)
        check_integers(self, ("steps", "log_every", "k", "edge_every", "edge_diagnoses"), 1)
        check_integers(self, ("seeds",), 0)
        if not self.seeds:
            raise GDFlowsError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
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
