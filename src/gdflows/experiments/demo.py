"""`gdflows demo` (what `make demo` runs): the core reproductions at small size,
written to one run folder with a Markdown report embedding the figures."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from gdflows.experiments.configs import DemoConfig
from gdflows.experiments.eos import report_markdown
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.quadratic import quadratic_section, quadratic_tables
from gdflows.experiments.report.runs import Run
from gdflows.experiments.toys import toys_section
from gdflows.experiments.train import TrainConfig, train

__all__ = ["DemoConfig", "run", "eos_section", "DEMO"]


def run(cfg: DemoConfig) -> Path:
    """``gdflows demo``: the three sections and REPORT.md into ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    folder.create()
    start = time.perf_counter()
    dist, paths = quadratic_tables(substeps=4)
    sections = [quadratic_section(folder, dist, paths), toys_section(folder, quick=True), eos_section(folder)]
    elapsed = time.perf_counter() - start
    header = (
        "# gdflows demo\n\nThe Principal Flow (PF) against GD and the flows it is compared with. "
        f"Computed by `gdflows demo --out {cfg.out}` in {elapsed:.0f} s.\n\n"
    )
    folder.write_text("REPORT.md", header + "\n".join(sections))
    folder.finish()
    print(f"wrote {folder.file('REPORT.md')}")
    return folder.path


DEMO = TrainConfig(net=NetworkSetup(n_train=500, downsample=4), lr=0.2, steps=400, log_every=8)


def eos_section(parent: Run, cfg: TrainConfig = DEMO) -> str:
    """The demo's section: a short MNIST run into ``<parent>/eos`` and its Markdown."""
    cfg = dataclasses.replace(cfg, out=parent.path / "eos")
    run = Run.open(cfg.out, cfg)
    train(cfg.net.build(cfg.devices, cfg.tol), cfg, run)
    intro = (
        "## Edge of stability on MNIST through the PF\n\n"
        f"Full-batch GD on a tanh MLP (7x7 MNIST images, h = {cfg.lr:g}), diagnosed through the PF every "
        f"{cfg.log_every} steps. Where h lambda_0 > 1, sc_0 is complex (on a quadratic c_0 would then flip "
        "sign over every step); the PF's dE/dt = sum_i sc_i c_i^2 is its prediction of the loss change. "
        "What this run showed is stated below the table, from its verdicts. Run folder: `eos/` (resume or "
        "extend with `gdflows train`).\n\n"
    )
    return intro + report_markdown(run, cfg, prefix="eos/")
