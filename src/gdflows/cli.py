"""Command line: one subcommand per experiment.

Each entry of COMMANDS maps a subcommand name to a config dataclass with a
``run(self)`` method; tyro turns the dataclass fields into flags.
"""

from __future__ import annotations

import importlib

import jax
import tyro

# name -> "module:ConfigClass"
COMMANDS: dict[str, str] = {
    "demo": "gdflows.experiments.demo:DemoConfig",
    "quadratic": "gdflows.experiments.quadratic:QuadraticConfig",
    "toys": "gdflows.experiments.toys:ToysConfig",
    "track": "gdflows.experiments.track:TrackConfig",
    "compare-optimizers": "gdflows.experiments.optimizers.compare:CompareOptimizersConfig",
    "train": "gdflows.experiments.train:TrainConfig",
    "drift": "gdflows.experiments.drift:DriftConfig",
    "reproduce": "gdflows.experiments.reproduce:ReproduceConfig",
}


def _load(spec: str):
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)


def main(argv: list[str] | None = None) -> None:
    jax.config.update("jax_enable_x64", True)  # the experiments' accuracy claims are float64 claims
    configs = {name: _load(spec) for name, spec in COMMANDS.items()}
    cfg = tyro.extras.subcommand_cli_from_dict(configs, args=argv)
    cfg.run()


if __name__ == "__main__":
    main()
