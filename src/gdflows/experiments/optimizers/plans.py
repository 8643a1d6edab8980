"""What ``gdflows compare-optimizers`` trains at each ``--scale``: one :class:`Plan` per scale, one pipeline
(:mod:`gdflows.experiments.optimizers.compare`) for all of them.

* ``cpu`` / ``full`` / ``smoke``: VGG- and ResNet-style nets on Fashion-MNIST, minibatches, a number of
  epochs, test loss and accuracy at every logged point (:data:`PLANS`).
* ``tuned`` / ``tuned_full`` / ``tuned_smoke``: the same nets, larger, on 10,000 training images with a
  validation split carved from the rest of the training set and the full test set, to the end of training;
  each rate-like hyperparameter tuned on the same grid budget, chosen on the validation split
  (:mod:`gdflows.experiments.optimizers.tuning`).
* a number s: the MNIST subset (tanh MLP and a small tanh CNN on 2x-downsampled images), full batch and
  minibatch, the steps and training-set sizes of the config times s, the full training loss at every logged
  point, steps to a loss target, and lambda_0 of the full loss beside DAL's rate (:func:`subset_plan`).
"""

from __future__ import annotations

import dataclasses
import math

from gdflows.errors import GDFlowsError
from gdflows.experiments.optimizers.tuning import Knob, Tuning
from gdflows.experiments.optimizers.zoo import Method, method, methods

PS = (1.0, 2.0)  # DAL-p exponents at scale
HG_MODES = ("hvp", "fd")
SUBSET_NETS = {"mlp": {"depth": 2, "width": 32, "activation": "tanh"}, "cnn": {"width": 4, "activation": "tanh"}}


@dataclasses.dataclass(frozen=True)
class Net:
    """One network of a plan and the training images it sees."""

    model: str  # a name of gdflows.models.MODELS
    kwargs: dict  # its builder's keyword arguments
    n_train: int | None  # training images (None: all), class-balanced
    downsample: int = 1  # average-pool the images by this factor


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one ``--scale`` trains: data, nets, regimes, schedule, the methods' hyperparameters, what is logged."""

    dataset: str
    nets: tuple[Net, ...]
    n_test: int | None  # test images (None: all)
    regimes: dict  # name -> batch size (None: full batch)
    lrs: tuple  # the SGD sweep
    ps: tuple  # DAL-p exponents
    hg_modes: tuple  # how DAL gets H g
    rates: dict  # the fixed rates of the families that take one (momentum, adam, schedule_free)
    max_lr: float  # the cap of DAL's, CDAT's and Polyak's rate
    secant_lr: float  # the secant's first step
    steps: int | None = None  # steps per run (None: ``epochs``)
    log_every: int | None = None  # steps between logged points (with ``steps``)
    epochs: int | None = None  # epochs per run (with ``logs_per_epoch``)
    logs_per_epoch: int | None = None
    loss: str = "cross_entropy"
    dtype: str = "float32"
    log_train_loss: bool = False  # the full training loss at every logged point
    loss_target: float | None = None  # report the steps to reach this training loss
    lambda_tol: float | None = None  # track lambda_0 of the full loss (seed 0, DAL families) at this tolerance
    report: str = "field"  # the report: "field" (conv nets) or "subset"
    classes: int = 10  # labels the nets tell apart (chance accuracy: 1 / classes)
    n_val: int | None = None  # validation images carved from the training set, beyond each net's n_train
    tuning: Tuning | None = None  # the tuning protocol (None: the fixed method list of lrs, ps, rates)

    def schedule(self, n: int, batch_size: int | None) -> tuple[int, int]:
        """(steps, log_every) of a run on n examples: the plan's steps, or ``logs_per_epoch`` equal chunks per
        epoch of batches of ``batch_size``."""
        if self.steps is not None:
            return self.steps, self.log_every
        per_epoch = n // batch_size
        if per_epoch < self.logs_per_epoch:
            raise GDFlowsError(
                f"{n} training images make {per_epoch} batches of {batch_size} per epoch, fewer than the "
                f"{self.logs_per_epoch} evaluations per epoch; use more images or a smaller batch"
            )
        log_every = per_epoch // self.logs_per_epoch
        return self.epochs * self.logs_per_epoch * log_every, log_every

    def methods(self) -> list[Method]:
        """Every method at this plan (the tuning protocol's grids start from the centre points)"""
        if self.tuning is not None:
            t = self.tuning
            return [k.method(j) for k in t.knobs for j in range(-(t.points // 2), t.points // 2 + 1)] + list(t.free)
        return self._fixed()

    def _fixed(self) -> list[Method]:
        """Every method of a fixed plan (:func:`gdflows.experiments.optimizers.zoo.methods`)."""
        return methods(
            sweep=self.lrs,
            ps=self.ps,
            hg_modes=self.hg_modes,
            max_lr=self.max_lr,
            secant_lr=self.secant_lr,
            rates=self.rates,
        )

    def selected(self, names) -> list[Method]:
        """The methods named in ``names`` (all when empty); an unknown name is refused."""
        every = self.methods()
        unknown = set(names) - {m.name for m in every}
        if unknown:
            raise GDFlowsError(f"unknown methods {sorted(unknown)}; known at this scale: {[m.name for m in every]}")
        return [m for m in every if not names or m.name in names]


_CPU = Plan(
    dataset="fashion_mnist",
    nets=(Net("vgg", {"width": 4, "hidden": 32}, 5000, 2), Net("resnet", {"width": 4, "blocks": 1}, 5000, 2)),
    n_test=2000,
    regimes={"minibatch": 100},
    lrs=(0.01, 0.03, 0.1, 0.3, 1.0),
    ps=PS,
    hg_modes=HG_MODES,
    rates={"momentum": 0.03, "adam": 1e-3, "schedule_free": 0.3},
    max_lr=5.0,
    secant_lr=0.01,  # no secant at scale
    epochs=3,
    logs_per_epoch=5,
)
PLANS = {
    "cpu": _CPU,
    "full": dataclasses.replace(
        _CPU,
        nets=(Net("vgg", {"width": 16, "hidden": 128}, None), Net("resnet", {"width": 16, "blocks": 2}, None)),
        n_test=None,
        regimes={"minibatch": 128},
        epochs=5,
        logs_per_epoch=4,
    ),
    "smoke": dataclasses.replace(
        _CPU,
        nets=(Net("vgg", {"width": 2, "hidden": 8}, None, 2),),  # one net: the tests' budget
        n_test=None,
        regimes={"minibatch": 8},
        epochs=2,
        logs_per_epoch=2,
        lrs=(0.03, 0.3),
    ),
}


def rate_knob(family: str, centre: float) -> Knob:
    """A rate on the grid centre * sqrt(10)^k: two points a decade."""
    return Knob(family, "lr", centre, math.sqrt(10))


TUNING = Tuning(
    knobs=(
        rate_knob("gd", 0.1),
        rate_knob("momentum", 0.01),
        rate_knob("adam", 1e-3),
        rate_knob("schedule_free", 0.1),
        Knob("dal", "p", 1.0, 2.0, (("max_lr", 5.0), ("hg", "hvp"))),
    ),
    free=(method("prodigy"), method("dog"), method("polyak", max_lr=5.0), method("cdat", max_lr=5.0)),
)
_TUNED = Plan(
    dataset="fashion_mnist",
    nets=(Net("vgg", {"width": 12, "hidden": 64}, 10000, 2), Net("resnet", {"width": 9, "blocks": 1}, 10000, 2)),
    n_test=None,
    n_val=2000,
    regimes={"minibatch": 128},
    lrs=(),
    ps=(),
    hg_modes=("hvp",),
    rates={},
    max_lr=5.0,
    secant_lr=0.01,
    epochs=10,
    logs_per_epoch=2,
    tuning=TUNING,
    report="tuned",
)
PLANS["tuned"] = _TUNED
PLANS["tuned_full"] = dataclasses.replace(
    _TUNED,
    nets=(Net("vgg", {"width": 16, "hidden": 128}, 50000), Net("resnet", {"width": 16, "blocks": 2}, 50000)),
    n_val=10000,
    epochs=20,
)
PLANS["tuned_smoke"] = dataclasses.replace(
    _TUNED,
    nets=(Net("vgg", {"width": 2, "hidden": 8}, None, 2),),
    n_val=16,
    regimes={"minibatch": 8},
    epochs=2,
    logs_per_epoch=2,
    tuning=dataclasses.replace(
        TUNING,
        knobs=TUNING.knobs[:1] + TUNING.knobs[-1:],
        free=TUNING.free[2:3],
        points=3,
        extensions=1,
        multiplier_steps=1,
    ),
)


def subset_plan(cfg) -> Plan:
    """The MNIST-subset plan of a resolved config (``--scale`` a number, already applied to its sizes)."""
    n_train = {"mlp": cfg.mlp_n_train, "cnn": cfg.cnn_n_train}
    down = {"mlp": 1, "cnn": cfg.cnn_downsample}
    return Plan(
        dataset="mnist_subset",
        nets=tuple(Net(m, SUBSET_NETS[m], n_train[m], down[m]) for m in cfg.models),
        n_test=None,
        regimes={r: {"full": None, "minibatch": cfg.batch_size}[r] for r in cfg.regimes},
        lrs=cfg.lrs,
        ps=cfg.ps,
        hg_modes=cfg.hg_modes,
        rates={"momentum": cfg.momentum_lr, "adam": cfg.adam_lr},
        max_lr=cfg.max_lr,
        secant_lr=cfg.secant_lr,
        steps=cfg.steps,
        log_every=cfg.log_every,
        loss=cfg.loss,
        dtype=cfg.dtype,
        log_train_loss=True,
        loss_target=cfg.loss_target,
        lambda_tol=cfg.lambda_tol,
        report="subset",
    )


def plan_for(cfg) -> Plan:
    """The plan of a resolved config: a named scale (with ``cfg.epochs`` when given) or the MNIST subset."""
    if not cfg.at_scale:
        return subset_plan(cfg)
    plan = PLANS[cfg.scale]
    return dataclasses.replace(plan, epochs=cfg.epochs) if cfg.epochs is not None else plan
