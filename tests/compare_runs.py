"""Shared by the compare-optimizers tests: a finished comparison, its finish marker gone, resumes from
results.csv without training anything."""

import pytest

from gdflows.experiments.optimizers import compare
from gdflows.experiments.report.runs import read_csv


def rerun_trains_nothing(cfg, monkeypatch) -> list[dict]:
    """Rerun ``cfg`` after removing ``.complete``, with every training refused; the results rows it leaves."""
    monkeypatch.setattr(compare, "train_run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    (cfg.out / ".complete").unlink()
    cfg.run()
    return read_csv(cfg.out / "results.csv")
