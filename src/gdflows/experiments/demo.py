"""`gdflows demo` (what `make demo` runs): the core reproductions at small size,
written to one run folder with a Markdown report embedding the figures."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from gdflows.experiments.quadratic import quadratic_section, quadratic_tables
from gdflows.experiments.toys import toys_section
from gdflows.experiments.train import eos_section
from gdflows.runs import Run


@dataclasses.dataclass
class DemoConfig:
    """Reference quadratic + toy landscapes + error orders, small and fast (< 5 min on 2 cores)."""

    out: Path = Path("runs/demo")

    def run(self) -> Path:
        run = Run.open(self.out, self)
        start = time.perf_counter()
        dist, paths = quadratic_tables(substeps=4)
        sections = [quadratic_section(run, dist, paths), toys_section(run, quick=True), eos_section(run)]
        elapsed = time.perf_counter() - start
        header = (
            "# gdflows demo\n\nThe Principal Flow (PF) against GD and the flows it is compared with. "
            f"Computed by `gdflows demo --out {self.out}` in {elapsed:.0f} s.\n\n"
        )
        run.write_text("REPORT.md", header + "\n".join(sections))
        print(f"wrote {run.path / 'REPORT.md'}")
        return run.path
