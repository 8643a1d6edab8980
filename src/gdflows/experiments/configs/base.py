"""What every command's config shares: its choices (built from the library's registries), the checks of
its values, and the command life-cycle (:class:`Command`)."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from gdflows._lazy import load  # noqa: F401 (the configs' way to name a runner: "module:function")
from gdflows.data import NAMES as DATASETS
from gdflows.errors import GDFlowsError
from gdflows.flows import FLOWS
from gdflows.models import ACTIVATIONS, LOSSES, MODELS
from gdflows.optim import EVALUATE_AT, HG_MODES, OPTIMIZERS

if typing.TYPE_CHECKING:
    from gdflows.experiments.configs.network import NetworkSetup

DatasetName = Literal[DATASETS]  # the registries of the library, read without JAX
ModelName = Literal[tuple(MODELS)]
ActivationName = Literal[tuple(ACTIVATIONS)]
LossName = Literal[tuple(LOSSES)]
DType = Literal["float64", "float32"]
OptimizerName = Literal[tuple(f for f in OPTIMIZERS if f not in EVALUATE_AT)]  # train: evaluated at the iterate
FlowName = Literal[tuple(FLOWS)]
HGMode = Literal[HG_MODES]
CompareModel = Literal["mlp", "cnn"]  # optimizers.plans.SUBSET_NETS
CompareScale = Literal["cpu", "full", "smoke", "tuned", "tuned_full", "tuned_smoke"]  # optimizers.plans.PLANS
RegimeName = Literal["full", "minibatch"]
ScaleName = Literal["cpu", "paper", "smoke"]  # reproduce.SCALES
PFProblem = Literal["sharp_dip", "tanh_mlp"]  # pf_validity.BUILD
ConvModel = Literal["vgg", "resnet"]  # the conv nets of gdflows.models.MODELS; EosConvConfig has <model>_lrs
EosConvSize = Literal["cpu", "accelerator"]  # accelerator: EOS_CONV_ACCELERATOR replaces the cpu defaults
PF_PROBLEMS: tuple[PFProblem, ...] = ("sharp_dip", "tanh_mlp")
PF_H_LAMBDAS = (0.5, 1.5, 1.9, 2.1, 2.5, 3.0, 3.5)


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


def check_edge_at(value) -> None:
    """``--edge-at``: a fraction of 2/h in (0, 1]."""
    if isinstance(value, bool) or not 0 < value <= 1:
        raise GDFlowsError(f"--edge-at must be in (0, 1] (a fraction of 2/h), got {value!r}; e.g. 0.98")


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
