"""Run folders: resolved config, metrics table, checkpoints, figures.

Every write is atomic (temp file in the same folder, then ``os.replace``), so
an interrupted run never leaves a half-written file; files get the usual
permissions (0666 less the umask, e.g. 0644).

A folder holds one run. Its identity is the config without ``out`` (where the
folder is) and without the keys a resumable command may raise (``extendable``:
``steps`` for ``gdflows train``): reopened with the same identity, a run
resumes from its checkpoint, or extends to a larger ``steps``; with a different
one it is refused, naming the keys that differ. Nothing is
created until :meth:`Run.create`, so a config refused on validation leaves no
folder. A finished run (:meth:`Run.finish`) is recognised on a rerun
(:meth:`Run.done`) and not recomputed.

Layout::

    <out>/config.json        resolved config (without out)
    <out>/metrics.csv        one row per logged step
    <out>/<table>.csv        result tables
    <out>/checkpoint.npz     latest checkpoint (step + flat arrays)
    <out>/figures/*.png
    <out>/REPORT.md
    <out>/.complete          the config of the finished run, written last
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gdflows.errors import GDFlowsError

COMPLETE = ".complete"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run that checkpoints; the message says the step reached and how to resume."""


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder (mode 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
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


def _flat(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys (``net.width``)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_conflicts(stored: Mapping, given: Mapping, extendable=()) -> list[str]:
    """What keeps ``given`` from reopening a folder that holds ``stored``: one entry per differing key
    (identity keys), or per extendable key that ``given`` lowers."""
    old, new = _flat(stored), _flat(given)
    problems = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if key in extendable and isinstance(a, int) and isinstance(b, int):
            if b < a:
                problems.append(f"{key} {b} < the {a} this folder holds (a larger value extends the run)")
        elif a != b:
            problems.append(f"{key}: {a!r} in the folder, {b!r} now")
    return problems


def check_out(path: Path) -> None:
    """Refuse an output path that is (or lies under) a file, or where no folder can be created and written.

    The nearest existing folder on the path is tried for real (a temporary folder made there and removed):
    permission bits do not tell, e.g. for root, or under a kernel's process filesystem.
    """
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise GDFlowsError(f"output path {path}: {p} is a file, not a folder; pass a folder (--out DIR)")
            try:
                os.rmdir(tempfile.mkdtemp(dir=p, prefix=".gdflows-check-"))
            except OSError as err:
                raise GDFlowsError(
                    f"output path {path}: cannot create a folder in {p} ({err.strerror}); "
                    "pass a folder you can write (--out DIR)"
                ) from None
            return


class Run:
    """A run folder. Use :meth:`prepare` (then :meth:`create`), or :meth:`open` for both."""

    def __init__(self, path: Path, config: dict):
        self.path = Path(path)
        self.config = config

    @classmethod
    def prepare(cls, out, config: Any, extendable=()) -> Run:
        """The run folder for ``config`` at ``out``, checked but not created.

        Raises :class:`GDFlowsError` if ``out`` is a file or holds a run of another
        identity (the message names the differing keys).
        """
        path = Path(out)
        check_out(path)
        resolved = json.loads(json.dumps(_jsonable(config)))
        resolved.pop("out", None)
        cfg_file = path / "config.json"
        if cfg_file.exists():
            stored = json.loads(cfg_file.read_text())
            stored.pop("out", None)
            problems = config_conflicts(stored, resolved, extendable)
            if problems:
                raise GDFlowsError(
                    f"{path} holds another run ({'; '.join(problems)}); pass another --out, "
                    "or delete the folder to start over"
                )
        return cls(path, resolved)

    @classmethod
    def pending(cls, command: Any) -> Run | None:
        """The folder of a command's run still to do, checked but not created; None (after printing
        ``complete: <report>``) when ``command.out`` already holds it finished.

        ``command``: a validated :class:`gdflows.experiments.commands.Command` (its ``run()``
        validates before the runner calls this, so a bad value is refused before any folder
        exists); the folder holds its ``identity()``, extendable by ``command.extendable``.
        """
        run = cls.prepare(command.out, command.identity(), command.extendable)
        return None if run.done() else run

    @classmethod
    def open(cls, out, config: Any, extendable=()) -> Run:
        """:meth:`prepare` and :meth:`create`: the folder, ready for writing."""
        return cls.prepare(out, config, extendable).create()

    def create(self) -> Run:
        """Create the folder and write ``config.json``."""
        atomic_write_text(self.file("config.json"), json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        return self

    @property
    def complete(self) -> bool:
        """Whether the folder holds the finished run of exactly this config."""
        marker = self.file(COMPLETE)
        if not marker.exists():
            return False
        done = json.loads(marker.read_text())
        return done.get("config") == self.config and self.file(done.get("report", "")).is_file()

    def done(self) -> bool:
        """True, after printing ``complete: <report>``, when the run is already finished."""
        if not self.complete:
            return False
        report = json.loads(self.file(COMPLETE).read_text())["report"]
        print(f"complete: {self.file(report)}")
        return True

    def finish(self, report: str = "REPORT.md") -> Path:
        """Mark the run finished (after its report is written): a rerun of this config will not recompute it."""
        return atomic_write_text(self.file(COMPLETE), json.dumps({"config": self.config, "report": report}) + "\n")

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
