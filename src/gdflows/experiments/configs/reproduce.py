"""``gdflows reproduce``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs.base import (
    Command,
    ScaleName,
    check_choices,
    load,
)


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
