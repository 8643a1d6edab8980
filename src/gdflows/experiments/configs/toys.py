"""``gdflows toys``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.experiments.configs.base import (
    Command,
)


@dataclasses.dataclass
class ToysConfig(Command):
    """Toy landscapes: sharp vs flat minimum, saddle escape, and one-step error orders of every flow.

    Writes <out>/sharp_dip_*.csv, saddle_*.csv, error_orders.csv, error_order_slopes.csv, figures and
    REPORT.md. Typical runtime: 1 to 3 minutes on 2 CPU cores (--quick: less).
    """

    runner: ClassVar[str] = "gdflows.experiments.toys:run"

    out: Path = Path("runs/toys")  # the run folder
    quick: bool = False  # fewer learning rates in the error-order fit
