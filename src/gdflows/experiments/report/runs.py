"""Run folders: resolved config, metrics table, checkpoints, figures.

Every write is atomic (temp file in the same folder, then ``os.replace``), so
an interrupted run never leaves a half-written file. A run reopened with the
same config resumes from its last checkpoint; with a different config it
refuses rather than mixing results.

Layout::

    <out>/config.json        resolved config
    <out>/metrics.csv        one row per logged step
    <out>/<table>.csv        result tables
    <out>/checkpoint.npz     latest checkpoint (step + flat arrays)
    <out>/figures/*.png
    <out>/REPORT.md
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gdflows.errors import GDFlowsError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(value, (complex, np.complexfloating)):
        return repr(complex(value))
    return str(value)


def table_to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text of a list of dicts (columns: union of keys, first-seen order)."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) if c in row else "" for c in columns])
    return buf.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Run:
    """A run folder. Use :meth:`open`."""

    def __init__(self, path: Path, config: dict):
        self.path = Path(path)
        self.config = config

    @classmethod
    def open(cls, out, config: Any, overwrite: bool = False) -> Run:
        """Create ``out`` (or reopen it for resuming when its config matches)."""
        path = Path(out)
        resolved = _jsonable(config)
        cfg_file = path / "config.json"
        if cfg_file.exists() and not overwrite:
            old = json.loads(cfg_file.read_text())
            if old != json.loads(json.dumps(resolved)):
                raise GDFlowsError(
                    f"{path} holds a run with a different config; pass another --out or delete the folder to start over"
                )
        atomic_write_text(cfg_file, json.dumps(resolved, indent=2, sort_keys=True) + "\n")
        return cls(path, resolved)

    def file(self, name: str) -> Path:
        return self.path / name

    def figure_path(self, name: str) -> Path:
        p = self.path / "figures" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.path / name, text)

    def write_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Write ``<name>.csv`` atomically (the whole table each time)."""
        return atomic_write_text(self.path / f"{name}.csv", table_to_csv(rows))

    def save_checkpoint(self, step: int, arrays: Mapping[str, Any], name: str = "checkpoint") -> Path:
        """Atomically save ``arrays`` (name -> array) with the step they belong to."""
        buf = io.BytesIO()
        np.savez(buf, __step__=np.asarray(step), **{k: np.asarray(v) for k, v in arrays.items()})
        return atomic_write_bytes(self.path / f"{name}.npz", buf.getvalue())

    def load_checkpoint(self, name: str = "checkpoint") -> tuple[int, dict[str, np.ndarray]] | None:
        p = self.path / f"{name}.npz"
        if not p.exists():
            return None
        with np.load(p) as data:
            arrays = {k: data[k] for k in data.files if k != "__step__"}
            return int(data["__step__"]), arrays
