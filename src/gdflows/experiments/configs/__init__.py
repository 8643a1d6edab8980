"""The ``gdflows`` commands' configs: one dataclass per command, whose fields are its flags, one module each.

This package imports the standard library and the library's light registries only, so ``gdflows --help`` and
``gdflows <command> --help`` answer without loading JAX or an experiment. ``config.run()`` validates the config
once, returns at once when ``out`` already holds the finished run (:meth:`Command.finished`), and only then
loads the module that does the work (:attr:`Command.runner`). A field's comment is its flag's help; a class
docstring says what the command writes and how long it typically takes on 2 CPU cores.

Choices are ``Literal`` types, listed by ``--help`` and refused by the parser when misspelt; those of the
library (datasets, models, activations, losses, flows, optimizers, Hg modes) are built from its registries.
"""

from gdflows.experiments.configs.base import (
    Command,
    changed_flags,
    check_choices,
    check_integers,
    check_positive,
    config_from_dict,
    flag,
    load,
    refuse_non_holomorphic,
)
from gdflows.experiments.configs.central import CentralConfig
from gdflows.experiments.configs.compare_optimizers import QUICK_METHODS, QUICK_SCALE, CompareOptimizersConfig
from gdflows.experiments.configs.demo import DemoConfig
from gdflows.experiments.configs.drift import DriftConfig
from gdflows.experiments.configs.eos_conv import EOS_CONV_ACCELERATOR, EosConvConfig
from gdflows.experiments.configs.network import NetworkSetup
from gdflows.experiments.configs.pf_validity import PFValidityConfig
from gdflows.experiments.configs.quadratic import QuadraticConfig
from gdflows.experiments.configs.reproduce import ReproduceConfig
from gdflows.experiments.configs.toys import ToysConfig
from gdflows.experiments.configs.track import TrackConfig
from gdflows.experiments.configs.train import TrainConfig

__all__ = [
    "Command",
    "NetworkSetup",
    "TrainConfig",
    "DriftConfig",
    "CentralConfig",
    "PFValidityConfig",
    "TrackConfig",
    "QuadraticConfig",
    "ToysConfig",
    "DemoConfig",
    "EosConvConfig",
    "CompareOptimizersConfig",
    "ReproduceConfig",
    "EOS_CONV_ACCELERATOR",
    "QUICK_SCALE",
    "QUICK_METHODS",
    "changed_flags",
    "check_choices",
    "check_integers",
    "check_positive",
    "config_from_dict",
    "flag",
    "load",
    "refuse_non_holomorphic",
]
