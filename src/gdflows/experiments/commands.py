"""The ``gdflows`` commands' configs: one dataclass per command, whose fields are its flags.

This module imports the standard library only, so ``gdflows --help`` and
``gdflows <command> --help`` answer without loading JAX or an experiment.
``config.run()`` validates the config, returns at once when ``out`` already
holds the finished run (:meth:`Command.finished`), and only then loads the
module that does the work (:attr:`Command.runner`). A field's comment is its flag's help; a class docstring
says what the command writes and how long it typically takes on 2 CPU cores.
The modules that run a command re-export its config (``from
gdflows.experiments.train import TrainConfig`` works).

Choices are ``Literal`` types, listed by ``--help`` and refused by the parser
when misspelt; each is checked against the registry it names in the tests.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from gdflows.data import NAMES as DATASETS
from gdflows.errors import GDFlowsError
from gdflows.flows import FLOWS
from gdflows.models import ACTIVATIONS, LOSSES, MODELS
from gdflows.optim import EVALUATE_AT, HG_MODES, OPTIMIZERS

DatasetName = Literal[DATASETS]  # the registries of the library, read without JAX
ModelName = Literal[tuple(MODELS)]
ActivationName = Literal[tuple(ACTIVATIONS)]
LossName = Literal[tuple(LOSSES)]
DType = Literal["float64", "float32"]
OptimizerName = Literal[tuple(f for f in OPTIMIZERS if f not in EVALUATE_AT)]  # train: evaluated at the iterate
FlowName = Literal[tuple(FLOWS)]
HGMode = Literal[HG_MODES]
CompareModel = Literal["mlp", "cnn"]  # compare.MODEL_KWARGS
CompareScale = Literal["cpu", "full", "smoke"]  # optimizers.field.PLANS
RegimeName = Literal["full", "minibatch"]
ScaleName = Literal["cpu", "paper", "smoke"]  # reproduce.SCALES
PFProblem = Literal["sharp_dip", "tanh_mlp"]  # pf_validity.BUILD
ConvModel = Literal["vgg", "resnet"]  # the conv nets of gdflows.models.MODELS; EosConvConfig has <model>_lrs
EosConvSize = Literal["cpu", "accelerator"]  # accelerator: EOS_CONV_ACCELERATOR replaces the cpu defaults
PF_PROBLEMS: tuple[PFProblem, ...] = ("sharp_dip", "tanh_mlp")
PF_H_LAMBDAS = (0.5, 1.5, 1.9, 2.1, 2.5, 3.0, 3.5)


def load(spec: str):
    """The object named by ``"package.module:name"``, importing its module now."""
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def flag(name: str, prefix: str = "--") -> str:
    """The command-line flag of a config field: ``n_train`` -> ``--net.n-train`` under prefix ``--net.``."""
    return prefix + name.replace("_", "-")


def _choices(hint) -> tuple | None:
    """The values a ``Literal`` (or a tuple of one) allows; None for other types."""
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def check_choices(cfg, prefix: str = "--") -> None:
    """Refuse a value outside its field's ``Literal`` choices (the parser does, but a config built in code may not)."""
    hints = typing.get_type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
        allowed = _choices(hints[field.name])
        value = getattr(cfg, field.name)
        for v in (value if isinstance(value, tuple) else (value,)) if allowed else ():
            if v not in allowed:
                raise GDFlowsError(f"{flag(field.name, prefix)} {v!r} is not one of: {', '.join(allowed)}")


def _fix(cfg, name: str, prefix: str) -> str:
    """ "; e.g. --x <default> (the default)", from the field's default."""
    field = next(f for f in dataclasses.fields(cfg) if f.name == name)
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
    return f"; e.g. {flag(name, prefix)} {shown} (the default)"


def changed_flags(cfg, default, prefix: str = "--", skip: tuple[str, ...] = ()) -> str:
    """The command-line flags that turn ``default`` into ``cfg`` (fields in ``skip`` left out; a data
    folder shown as DIR)."""
    flags = ""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in skip and value != getattr(default, f.name):
            shown = "DIR" if f.name == "data_dir" else " ".join(map(str, value)) if isinstance(value, tuple) else value
            flags += f" {prefix}{f.name.replace('_', '-')} {shown}"
    return flags


def config_from_dict(cls, stored: dict):
    """The config ``cls`` that :func:`json.dumps` of ``dataclasses.asdict`` gave ``stored`` (a run folder's
    config.json): lists back to tuples, folders back to paths, nested configs (``net``) rebuilt; keys that
    ``cls`` does not have are left out."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in stored:
            continue
        value, hint = stored[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif value is not None and Path in typing.get_args(hint) + (hint,):
            value = Path(value)
        values[field.name] = value
    return cls(**values)


def check_positive(cfg, names, prefix: str = "--") -> None:
    """Each named field (a number, or a tuple of numbers) must be finite and > 0."""
    for name in names:
        value = getattr(cfg, name)
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise GDFlowsError(f"{flag(name, prefix)} must be finite and > 0, got {v!r}{_fix(cfg, name, prefix)}")


def check_integers(cfg, names, low: int, prefix: str = "--") -> None:
    """Each named field (an int, a tuple of ints, or None where allowed) must be an integer >= ``low``."""
    for name in names:
        value = getattr(cfg, name)
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise GDFlowsError(
                    f"{flag(name, prefix)} must be an integer >= {low}, got {v!r}{_fix(cfg, name, prefix)}"
                )


def refuse_non_holomorphic(net: NetworkSetup, why: str) -> None:
    """ReLU has no complex continuation, so nothing that evaluates the PF can run through it."""
    if net.activation == "relu":
        raise GDFlowsError(f"--net.activation relu is not holomorphic and {why}; use tanh, gelu or softplus")


class Command:
    """A command's config; ``run()`` hands it to ``runner`` ("module:function") and returns the run folder.

    ``validate()`` checks the values (no JAX, nothing written); :meth:`run` calls it once, before
    anything else, and the runner takes the config as validated.
    """

    runner: ClassVar[str]
    extendable: ClassVar[tuple[str, ...]] = ()  # keys a rerun may raise to extend a finished run

    def validate(self) -> None:
        check_choices(self)

    def identity(self) -> Command:
        """The config its run folder holds (where that differs from the flags, e.g. ``--quick`` resolved)."""
        return self

    def finished(self) -> bool:
        """True, after printing ``complete: <report>``, when ``out`` already holds this run finished
        (checked before the command's module and JAX load, so a rerun returns at once)."""
        run = load("gdflows.experiments.report.runs:Run")
        return run.prepare(self.out, self.identity(), self.extendable).done()

    def run(self, before_work: Callable[[], None] | None = None) -> Path:
        """Validate (the one validation of a command), return at once when ``out`` holds the finished run,
        else call ``before_work()`` (the command line sets JAX up there) and the runner."""
        self.validate()
        if self.finished():
            return Path(self.out)
        if before_work is not None:
            before_work()
        return load(self.runner)(self)


@dataclasses.dataclass(frozen=True)
class NetworkSetup:
    """Which network on which data (CPU-sized defaults: a tanh MLP, 2 hidden layers of 32,
    MSE on 1,000 bundled MNIST images pooled to 14x14: 7,690 parameters)."""

    dataset: DatasetName = "mnist_subset"  # mnist_subset is bundled; the others read files from data_dir
    data_dir: Path | None = None  # folder with the mnist / fashion_mnist IDX files or cifar-10-batches-py
    n_train: int | None = 1000  # training images (None: all), class-balanced
    n_test: int | None = None  # test images (None: all)
    classes: tuple[int, ...] = ()  # keep only these labels (empty: all)
    downsample: int = 2  # average-pool images by this factor
    model: ModelName = "mlp"
    depth: int = 2  # hidden layers (mlp only)
    width: int = 32  # hidden width (mlp), width multiplier (cnn, vgg, resnet)
    activation: ActivationName = "tanh"  # relu is not holomorphic: no Principal Flow through it
    loss: LossName = "mse"
    seed: int = 0  # parameter initialisation
    dtype: DType = "float64"
    curvature_size: int | None = 1000  # training images the diagnoses use (a class-balanced subset; None: all)
    chunk_size: int | None = None  # images per chunk of every full-data pass (None: 256, on CPUs fewer for big nets)

    def validate(self, prefix: str = "--net.") -> None:
        check_choices(self, prefix)
        positive = ("n_train", "n_test", "downsample", "depth", "width", "curvature_size", "chunk_size")
        check_integers(self, positive, 1, prefix)
        check_integers(self, ("classes", "seed"), 0, prefix)
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise GDFlowsError(
                f"{flag('data_dir', prefix)} {self.data_dir} is not a folder; pass the folder that holds "
                f"the {self.dataset} files"
            )

    def build(self, devices: int | None = None, tol: float | None = None):
        """Load and subset the data, initialise the model, lay the data out on ``devices`` local devices
        (None: all) (a :class:`gdflows.problems.network.NetworkProblem`, diagnosing at ``tol``)."""
        self.validate()
        return load("gdflows.experiments.network_setup:build_network")(self, devices=devices, tol=tol)


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
    k: int = 2  # eigen-directions per diagnosis
    tol: float | None = None  # eigenpair residual and PF-field tolerance (None: max(1e-8, 100 eps) of --net.dtype)
    max_hvps: int = 100  # HVP budget of each Lanczos solve in a diagnosis; one that runs out is flagged
    hover_tol: float = 0.1  # |lambda_0 / (2/lr) - 1| allowed over the last third
    noise_rtol: float = 1e-6  # observed changes below this fraction of the loss are noise

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "max_lr", "hover_tol", "noise_rtol"))
        check_integers(self, ("steps", "batch_size"), 0)
        check_integers(self, ("log_every", "k", "devices"), 1)
        check_integers(self, ("max_hvps",), 2)
        if self.tol is not None and (isinstance(self.tol, bool) or not 0 < self.tol < 1):
            raise GDFlowsError(f"--tol must be > 0 and < 1 (a relative tolerance), got {self.tol!r}; e.g. --tol 1e-7")
        if not 0 <= self.momentum < 1:
            raise GDFlowsError(f"--momentum must be in [0, 1), got {self.momentum!r}")
        if not (math.isfinite(self.dal_p) and self.dal_p >= 0):
            raise GDFlowsError(f"--dal-p must be a finite number >= 0, got {self.dal_p!r}")
        if self.net.n_train is not None and self.batch_size > self.net.n_train:
            raise GDFlowsError(f"--batch-size {self.batch_size} exceeds --net.n-train {self.net.n_train}")
        refuse_non_holomorphic(self.net, "every diagnosis evaluates the Principal Flow")


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


def _track_net() -> NetworkSetup:
    return NetworkSetup(n_train=256, classes=(0, 1, 2, 3), downsample=4, depth=1, width=16)


@dataclasses.dataclass
class CentralConfig(Command):
    """GD, gradient flow and the central flow side by side from initialisation, on a network at the edge of stability.

    Writes <out>/central_steps.csv (per GD step: GD's raw and time-averaged loss, gradient flow's
    loss, the central flow's loss and prediction L + <Sigma, H>/2, top eigenvalues), central_calls.csv
    (cost per compiled chunk), central_metrics.csv, central_claims.csv (four claims, each judged),
    figures/loss.png, figures/sharpness.png and REPORT.md.
    Typical runtime: about 2 to 3 minutes for the defaults on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.central:run"

    out: Path = Path("runs/central")  # the run folder
    lr: float = 0.3  # h lambda_0 = 1.89 at initialisation: EoS from step ~560, a second eigenvalue from ~890
    steps: int = 3000  # GD steps
    k: int = 4  # tracked eigendirections of the central flow
    substeps: int = 4  # Euler substeps per GD step
    window: int = 301  # centred moving average of GD (odd): GD's oscillation bursts come ~180 steps apart here
    sharpness_every: int = 25  # GD's top-k eigenvalues every this many steps
    chunk: int = 100  # GD steps per compiled call of the central-flow solver (the unit of its timing)
    gf_rtol: float = 1e-8  # gradient-flow (NGF) solve tolerances
    gf_atol: float = 1e-10
    net: NetworkSetup = dataclasses.field(default_factory=lambda: _track_net())
    devices: int | None = None  # local devices the data is split across (None: all of them)

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "gf_rtol", "gf_atol"))
        check_integers(self, ("steps", "k", "substeps", "sharpness_every", "chunk", "window", "devices"), 1)
        if self.window % 2 == 0:
            raise GDFlowsError(f"--window must be odd (a centred average), got {self.window}; e.g. --window 301")
        if self.steps < self.window:
            raise GDFlowsError(f"--steps ({self.steps}) must be >= --window ({self.window}); raise --steps")
        refuse_non_holomorphic(self.net, "the central flow differentiates the loss three times")


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


@dataclasses.dataclass
class TrackConfig(Command):
    """Which flow (NGF, IGR, third-order, PF, PF+NP, central) follows GD on a network, from GD iterates.

    Writes <out>/track_distances.csv, track_sharpness.csv, track_summary.csv, one figure per start
    and REPORT.md. Typical runtime: 2 to 4 minutes for the defaults on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.track:run"

    out: Path = Path("runs/track")  # the run folder
    lr: float = 0.25  # GD's learning rate h
    train_steps: int = 3130  # GD steps run first
    # GD steps the flows start from: h*lambda_0 = 1.47 (before EoS), 2.08 (above 2/h, GD not yet
    # oscillating: it follows gradient flow until ~1550), 2.04 (GD oscillating at EoS)
    starts: tuple[int, ...] = (100, 1380, 3120)
    horizon: int = 10  # GD steps each flow is solved over
    net: NetworkSetup = dataclasses.field(default_factory=_track_net)
    flows: tuple[FlowName, ...] = tuple(FLOWS)
    rtol: float = 1e-8  # flow solve tolerances
    atol: float = 1e-10
    devices: int | None = None  # local devices the data is split across (None: all of them)

    def validate(self) -> None:
        self.net.validate()
        check_choices(self)
        check_positive(self, ("lr", "rtol", "atol"))
        check_integers(self, ("train_steps", "horizon", "devices"), 1)
        check_integers(self, ("starts",), 0)
        if not self.starts or max(self.starts) + self.horizon > self.train_steps:
            raise GDFlowsError(
                f"every start + horizon must be <= --train-steps {self.train_steps}, got starts {self.starts} "
                f"and horizon {self.horizon}; raise --train-steps or lower --starts"
            )
        if {"PF", "PF+NP"} & set(self.flows):
            refuse_non_holomorphic(self.net, "the Principal Flow (PF, PF+NP) goes complex")


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


@dataclasses.dataclass
class ToysConfig(Command):
    """Toy landscapes: sharp vs flat minimum, saddle escape, and one-step error orders of every flow.

    Writes <out>/sharp_dip_*.csv, saddle_*.csv, error_orders.csv, error_order_slopes.csv, figures and
    REPORT.md. Typical runtime: 1 to 3 minutes on 2 CPU cores (--quick: less).
    """

    runner: ClassVar[str] = "gdflows.experiments.toys:run"

    out: Path = Path("runs/toys")  # the run folder
    quick: bool = False  # fewer learning rates in the error-order fit


@dataclasses.dataclass
class DemoConfig(Command):
    """The tour: reference quadratic, toy landscapes, error orders and a short edge-of-stability run.

    Writes <out>/REPORT.md with its tables and figures. Typical runtime: under 5 minutes on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.demo:run"

    out: Path = Path("runs/demo")  # the run folder


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


QUICK_SCALE = dict(seeds=1, steps=20, mlp_n_train=128, cnn_n_train=64, batch_size=32, log_every=5)
QUICK_METHODS = ("gd_lr0.1", "dal_p1_hvp", "dal_p1_fd", "dal_p1_secant", "polyak", "adam_lr0.001", "dal_adam")


@dataclasses.dataclass
class CompareOptimizersConfig(Command):
    """DAL against the field: DAL-p, DAL-momentum, DAL-Adam vs tuned SGD, momentum, Adam, Prodigy, DoG, Polyak,
    schedule-free and CDAT.

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
        if self.quick and self.scale in ("full", "smoke"):
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


@dataclasses.dataclass
class ReproduceConfig(Command):
    """Every claim of the paper beside our measured number, with the command behind it.

    Writes <out>/REPRODUCTION.md, claims.csv, TIMINGS.md and one sub-folder per sub-experiment (each resumable).
    Typical runtime on 2 CPU cores: --scale cpu about 8 CPU-minutes (two 2,000-step train runs, a drift,
    a DAL comparison, the PF validity table and a 3,000-step central flow); smoke about a minute; paper
    (eos-conv at 5,000 Fashion-MNIST images and compare-optimizers --scale full, written to PAPER_SCALE.md)
    needs an accelerator: about 8 minutes on one.
    """

    runner: ClassVar[str] = "gdflows.experiments.reproduce:run"

    out: Path = Path("runs/reproduce")  # the run folder
    scale: ScaleName = "cpu"  # cpu; paper (conv nets on Fashion-MNIST, for an accelerator); smoke (tests)
    data_dir: Path | None = None  # --scale paper: folder with the Fashion-MNIST IDX files (default: Debian's)
    docs: Path | None = None  # also copy the report and its figures here (e.g. docs/reproduction)
    check: Path | None = None  # compare the report and figures with this committed copy; fail on a difference

    def identity(self) -> dict:
        # Where to copy to is not part of the run; the software is: a folder from other code is refused.
        config = dataclasses.asdict(dataclasses.replace(self, docs=None, check=None))
        return {**config, "software": load("gdflows.experiments.report.software:software")()}

    def finished(self) -> bool:
        return self.docs is None and self.check is None and super().finished()  # --docs / --check still run

    def validate(self) -> None:
        check_choices(self)
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise GDFlowsError(
                f"--data-dir {self.data_dir} is not a folder; pass the folder that holds the Fashion-MNIST IDX files"
            )
