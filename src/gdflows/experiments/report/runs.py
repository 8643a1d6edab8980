"""Run folders: resolved config, metrics table, checkpoints, figures.

Every write is atomic (temp file in the same folder, then ``os.replace``), so
an interrupted run never leaves a half-written file; files get the usual
permissions (0666 less the umask, e.g. 0644).

A folder holds one run. Its identity is the config without ``out`` (where the
folder is) and without the keys a resumable command may raise (``extendable``:
``steps`` for ``gdflows train``) or add entries to (a list: ``eos-conv``'s rates and seeds, ``track``'s
starts): reopened with the same identity, a run
resumes from its checkpoint, or extends to a larger ``steps``; with a different
one it is refused, naming the keys that differ. Nothing is
created until :meth:`Run.create`, so a config refused on validation leaves no
folder. A finished run (:meth:`Run.finish`) is recognised on a rerun
(:meth:`Run.done`) and not recomputed.

Every file read back is checked as it is read: a damaged one (cut short,
garbled, or not of this run) raises :class:`~gdflows.experiments.errors.DamagedRunError`,
one line naming the file and the fix (delete the folder and rerun the command
to start over), except where the folder holds what replaces it: a damaged
latest checkpoint gives way, with a warning, to the previous one (the metrics
rows from its step on are then recomputed), and a damaged ``.complete``, or a
table changed after the run finished, makes the run count as unfinished (a
warning; it resumes from what the folder holds). A write that finds the disk
full raises :class:`~gdflows.experiments.errors.DiskFullError`, which says that the folder
still holds its last good state.

Layout::

    <out>/config.json          resolved config (without out)
    <out>/metrics.csv          one row per logged step
    <out>/<table>.csv          result tables
    <out>/checkpoint.npz       latest checkpoint (step, flat arrays, a digest of the rows logged before the step)
    <out>/checkpoint.prev.npz  the checkpoint before it
    <out>/figures/*.png
    <out>/REPORT.md
    <out>/.complete            the config of the finished run and digests of its tables, written last
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.experiments.errors import DamagedRunError, disk_full_reported

COMPLETE = ".complete"


def has_finish_marker(folder: Path) -> bool:
    """Whether ``folder`` holds a finish marker (present, not checked against a config: :meth:`Run.complete`
    does that)."""
    return (Path(folder) / COMPLETE).is_file()


def warn(message: str) -> None:
    """One line on stderr: ``warning: <message>``."""
    print(f"warning: {' '.join(message.split())}", file=sys.stderr)


def _temp_file(path: Path, data: bytes) -> Path:
    """A new file beside ``path`` holding ``data``, synced to disk (removed again if writing fails)."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, previous: Path | None = None) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder (mode 0666 less the umask).

    ``previous``: where the file ``path`` held goes, once ``data`` is safely on disk. A full
    disk raises :class:`~gdflows.experiments.errors.DiskFullError` and leaves both files as they were.
    """
    path = Path(path)
    with disk_full_reported(path.parent, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_file(path, data)
        try:
            if previous is not None and path.exists():
                os.replace(path, previous)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
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


def rows_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """A digest of table rows as their CSV cells (empty ones left out): rows read back digest as written."""
    cells = [{k: _cell(v) for k, v in row.items() if _cell(v) != ""} for row in rows]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def file_digest(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (None when it is missing)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DamagedRunError(path, f"not UTF-8 text at byte {err.start}") from None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; :class:`DamagedRunError` when it is not one."""
    try:
        value = json.loads(_text(Path(path)))
    except json.JSONDecodeError as err:
        raise DamagedRunError(path, f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise DamagedRunError(path, "not a JSON object")
    return value


def read_csv(path: Path, columns: Iterable[str] = (), ints: Iterable[str] = ()) -> list[dict[str, str]]:
    """The rows of a table :func:`table_to_csv` wrote, with the ``columns`` named and integer ``ints``;
    :class:`DamagedRunError` naming the file when it is not such a table (e.g. cut short or garbled)."""
    path = Path(path)
    text = _text(path)
    if not text.endswith("\n"):
        raise DamagedRunError(path, "cut short: no newline at its end")
    try:
        header, *body = csv.reader(io.StringIO(text, newline=""), strict=True)
    except csv.Error as err:
        raise DamagedRunError(path, f"not CSV: {err}") from None
    missing = [c for c in [*columns, *ints] if c not in header]
    if missing:
        raise DamagedRunError(path, f"no column {missing[0]!r}")
    for i, cells in enumerate(body, 1):
        if len(cells) != len(header):
            raise DamagedRunError(path, f"row {i}: {len(cells)} cells, the header {len(header)}")
    rows = [dict(zip(header, cells)) for cells in body]
    for i, row in enumerate(rows, 1):
        bad = [c for c in ints if not _is_int(row[c])]
        if bad:
            raise DamagedRunError(path, f"row {i}: {bad[0]} {row[bad[0]]!r} is not an integer")
    return rows


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
    (identity keys), or per extendable key that ``given`` lowers (a number) or leaves an entry out of (a list:
    a design that adds runs or starts keeps those already computed). A switch the folder predates, given off
    (``False``), is no conflict: an opt-in added later computes, when off, what the folder holds."""
    old, new = _flat(stored), _flat(given)
    problems = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if a == "(absent)" and b is False:
            continue
        if key in extendable and isinstance(a, int) and isinstance(b, int):
            if b < a:
                problems.append(f"{key} {b} < the {a} this folder holds (a larger value extends the run)")
        elif key in extendable and isinstance(a, list) and isinstance(b, list):
            dropped = [v for v in a if v not in b]
            if dropped:
                problems.append(f"{key} leaves out {dropped} that this folder holds (a list keeping them extends it)")
        elif a != b:
            problems.append(f"{key}: {a!r} in the folder, {b!r} now")
    return problems


STEP = "__step__"
ROWS = "__rows_"  # + table name + "__": the digest of that table's rows logged before the step
Layout = Mapping[str, tuple[tuple[int | None, ...], Any]]  # array name -> (shape, dtype); None: any size or dtype


def _fits(array: np.ndarray, shape: tuple[int | None, ...], dtype) -> bool:
    sizes = len(array.shape) == len(shape) and all(n is None or n == m for n, m in zip(shape, array.shape))
    return sizes and (dtype is None or array.dtype == np.dtype(dtype))


def _check_layout(path: Path, arrays: Mapping[str, np.ndarray], layout: Layout) -> None:
    """:class:`DamagedRunError` unless ``arrays`` has exactly ``layout``'s names, shapes and dtypes."""
    for name, (shape, dtype) in layout.items():
        if name not in arrays:
            raise DamagedRunError(path, f"no array {name!r}")
        a = arrays[name]
        if not _fits(a, shape, dtype):
            raise DamagedRunError(path, f"{name} is {a.dtype} {a.shape}, this run's {dtype or 'any'} {shape}")
    extra = sorted(set(arrays) - set(layout))
    if extra:
        raise DamagedRunError(path, f"arrays this run has none of: {', '.join(extra)}")


def read_checkpoint(path: Path, layout: Layout | None = None) -> tuple[int, dict[str, np.ndarray], dict[str, str]]:
    """(step, arrays, table digests) of a checkpoint :meth:`Run.save_checkpoint` wrote, its arrays checked
    against ``layout`` (None: not checked); :class:`DamagedRunError` when it is not such a checkpoint."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # whatever stops numpy reading it (zip, CRC, header, size): not what was written
        raise DamagedRunError(path, f"unreadable: {type(err).__name__}: {err}") from None
    step = arrays.pop(STEP, None)
    if step is None or step.shape != () or step.dtype.kind not in "iu":
        raise DamagedRunError(path, "no step")
    digests = {k[len(ROWS) : -2]: str(arrays.pop(k)) for k in list(arrays) if k.startswith(ROWS)}
    if layout is not None:
        _check_layout(path, arrays, layout)
    return int(step), arrays, digests


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
            stored = read_json(cfg_file)
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

        ``command``: a validated :class:`gdflows.experiments.configs.Command` (its ``run()``
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
        return self._finished_report() is not None

    def _finished_report(self) -> str | None:
        """The report of the finished run of this config, else None. A damaged marker, or one whose
        tables changed since, is removed with a warning: the run then counts as unfinished and resumes."""
        marker = self.file(COMPLETE)
        if not marker.exists():
            return None
        try:
            done = read_json(marker)
        except DamagedRunError as err:
            return self._unfinish(f"{marker} is damaged ({err.what})")
        report, tables = done.get("report"), done.get("tables", {})
        if not isinstance(report, str) or not isinstance(tables, dict):
            return self._unfinish(f"{marker} is damaged (not a finish marker)")
        if done.get("config") != self.config or not self.file(report).is_file():
            return None
        changed = [name for name, digest in sorted(tables.items()) if file_digest(self.file(name)) != digest]
        if changed:
            return self._unfinish(f"{self.file(changed[0])} changed after the run finished")
        return report

    def _unfinish(self, problem: str) -> None:
        warn(f"{problem}; the run counts as unfinished and resumes from what the folder holds")
        self.file(COMPLETE).unlink(missing_ok=True)

    def done(self) -> bool:
        """True, after printing ``complete: <report>``, when the run is already finished."""
        report = self._finished_report()
        if report is None:
            return False
        print(f"complete: {self.file(report)}")
        return True

    def finish(self, report: str = "REPORT.md") -> Path:
        """Mark the run finished (after its report is written): a rerun of this config will not recompute it.
        The marker holds a digest of each table, so a rerun notices a table changed since."""
        tables = {p.name: file_digest(p) for p in sorted(self.path.glob("*.csv"))}
        done = {"config": self.config, "report": report, "tables": tables}
        return atomic_write_text(self.file(COMPLETE), json.dumps(done) + "\n")

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

    def read_table(self, name: str, columns: Iterable[str] = (), ints: Iterable[str] = ()) -> list[dict[str, str]]:
        """The rows of ``<name>.csv`` (none when it does not exist), checked as :func:`read_csv` does."""
        path = self.file(f"{name}.csv")
        return read_csv(path, columns, ints) if path.exists() else []

    def write_keyed(self, table: str, rows: list[dict], detail: str, details: list[dict]) -> None:
        """Write ``<detail>.csv``, then ``<table>.csv``: the table says which units of work are done."""
        self.write_table(detail, details)
        self.write_table(table, rows)

    def read_keyed(self, table: str, detail: str, key: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
        """The rows of ``<table>.csv`` (one per unit of work done, named by its ``key`` columns) and of
        ``<detail>.csv`` (:meth:`write_keyed` writes it first) that belong to them: details of a unit a kill
        left out of the table are dropped, as it will be redone."""
        rows = self.read_table(table, columns=key)
        done = {tuple(r[k] for k in key) for r in rows}
        return rows, [r for r in self.read_table(detail, columns=key) if tuple(r[k] for k in key) in done]

    def save_checkpoint(
        self, step: int, arrays: Mapping[str, Any], tables: Mapping[str, list] | None = None, name: str = "checkpoint"
    ) -> Path:
        """Atomically save ``arrays`` (name -> array) with the step they belong to and a digest of
        ``tables`` (name -> the rows logged before ``step``); the checkpoint it replaces, once this
        one is on disk, becomes ``<name>.prev.npz``."""
        digests = {f"{ROWS}{table}__": np.asarray(rows_digest(rows)) for table, rows in (tables or {}).items()}
        buf = io.BytesIO()
        np.savez(buf, **{STEP: np.asarray(step)}, **digests, **{k: np.asarray(v) for k, v in arrays.items()})
        return atomic_write_bytes(self.file(f"{name}.npz"), buf.getvalue(), previous=self.file(f"{name}.prev.npz"))

    def resume(
        self, layout: Layout | None = None, tables: Iterable[str] = (), name: str = "checkpoint"
    ) -> tuple[int, dict[str, np.ndarray], dict[str, list[dict[str, str]]]] | None:
        """(step, arrays, rows of each table logged before step) to resume from; None without a checkpoint.

        The latest checkpoint, its arrays checked against ``layout`` and the rows of ``tables``
        (``<table>.csv``, a ``step`` column) against the digest it was saved with. When it is
        damaged (or those rows are), the previous checkpoint, with a warning (the latest is
        removed); when both are, :class:`DamagedRunError`.
        """
        latest, previous = self.file(f"{name}.npz"), self.file(f"{name}.prev.npz")
        if not (latest.exists() or previous.exists()):
            return None
        read = {table: self.read_table(table, ints=("step",)) for table in tables}
        try:
            return self._restore(latest, layout, read)
        except DamagedRunError as err:
            first = err
        try:
            found = self._restore(previous, layout, read)
        except DamagedRunError as err:
            raise DamagedRunError(first.path, f"{first.what}; {err.path.name}: {err.what}") from None
        problem = f"is damaged ({first.what})" if latest.exists() else "is missing"
        warn(f"{first.path} {problem}; resuming from {previous.name} (step {found[0]})")
        latest.unlink(missing_ok=True)  # so the next checkpoint keeps this one as the previous
        return found

    def _restore(self, path: Path, layout: Layout | None, tables: Mapping[str, list[dict[str, str]]]):
        """:meth:`resume` from the checkpoint ``path``."""
        if not path.exists():
            raise DamagedRunError(path, "missing")
        step, arrays, digests = read_checkpoint(path, layout)
        rows = {table: [r for r in all_rows if int(r["step"]) < step] for table, all_rows in tables.items()}
        for table, kept in rows.items():
            if table in digests and rows_digest(kept) != digests[table]:
                what = f"its rows before step {step} differ from those {path.name} was saved with"
                raise DamagedRunError(self.file(f"{table}.csv"), what)
        return step, arrays, rows
