"""``gdflows demo``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.experiments.configs.base import (
    Command,
)


@dataclasses.dataclass
class DemoConfig(Command):
    """The tour: reference quadratic, toy landscapes, error orders and a short edge-of-stability run.

    Writes <out>/REPORT.md with its tables and figures. Typical runtime: under 5 minutes on 2 CPU cores.
    """

    runner: ClassVar[str] = "gdflows.experiments.demo:run"

    out: Path = Path("runs/demo")  # the run folder
