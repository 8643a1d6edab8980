"""Damaged run folders are diagnosed, not crashed on. Each file a rerun reads back (config.json,
checkpoint.npz, checkpoint.prev.npz, metrics.csv, .complete), cut short or garbled in a finished and in
an interrupted run, ends in one line naming the file (exit 2), or in a warning and a run whose metrics.csv
equals an uninterrupted run's byte for byte; a full disk at a checkpoint leaves a folder that resumes to
the same numbers."""

import errno
import os
import shutil

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from cli_runs import interrupted_at_diagnosis, run_cli, train_argv
from gdflows.experiments import train as train_module
from gdflows.experiments.errors import DamagedRunError
from gdflows.experiments.report import runs as runs_module
from gdflows.experiments.report.runs import Run, read_checkpoint, read_csv

CACHE = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A persistent compilation cache while this module runs: every run compiles its programs anew, and
    the cache turns that into a read (the suite runs without one; it is restored after)."""
    old = {name: getattr(jax.config, name) for name in CACHE}
    jax.config.update(CACHE[0], str(tmp_path_factory.mktemp("xla")))
    jax.config.update(CACHE[1], 0.0)
    compilation_cache.reset_cache()
    yield
    for name, value in old.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, compile_cache):
    """Uninterrupted runs of 6 and 9 steps (rows at 0, 3, 6, 9; checkpoints at 3, 6, 9), and a 6-step run
    stopped by Ctrl-C at its last diagnosis: checkpoints at steps 6 and 3, metrics rows 0 and 3."""
    root = tmp_path_factory.mktemp("runs")
    for steps in (6, 9):
        assert run_cli(train_argv(steps, root / f"full{steps}"))[0] == 0
    with interrupted_at_diagnosis(3):
        assert run_cli(train_argv(6, root / "interrupted"))[0] == 130
    return root


def truncate(path):
    """The file cut to its first half (a checkpoint to its first 1,000 bytes)."""
    data = path.read_bytes()
    path.write_bytes(data[: 1000 if path.suffix == ".npz" else len(data) // 2])


def garble(path):
    """Sixteen bytes in the middle of the file overwritten (non-UTF-8 bytes, a comma, a quote, a newline)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b'\xff\x00garbled,"\n\xfe;x{'
    path.write_bytes(bytes(data))


def mark_damaged(path):
    """A ``.complete`` marker of the finished run, cut short (an interrupted run has none to damage)."""
    path.write_text('{"config": {"lr": 0.05, "ste')


def copy_of(runs, source, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(runs / source, folder)
    return folder


def _one_line_error(code, err, path):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"gdflows train: error: {path} is damaged ("), err
    assert f"delete {path.parent} and rerun the command to start over" in err


# (source folder, damaged file, damage, --steps of the rerun)
ERRORS = [
    ("full6", "config.json", truncate, 9),
    ("full6", "config.json", garble, 6),
    ("interrupted", "config.json", truncate, 6),
    ("interrupted", "config.json", garble, 6),
    ("full6", "metrics.csv", truncate, 9),
    ("full6", "metrics.csv", garble, 9),
    ("full6", "metrics.csv", truncate, 6),  # the finished run notices its table changed, then reads it
    ("interrupted", "metrics.csv", truncate, 6),
    ("interrupted", "metrics.csv", garble, 6),
]


@pytest.mark.parametrize("source, name, damage, steps", ERRORS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_damaged_file_that_nothing_replaces_is_one_line_naming_it(runs, tmp_path, source, name, damage, steps):
    folder = copy_of(runs, source, tmp_path)
    damage(folder / name)
    code, _, err = run_cli(train_argv(steps, folder))
    if name == "metrics.csv" and source == "full6" and steps == 6:
        warning, err = err.split("\n", 1)
        assert warning.startswith(f"warning: {folder / name} changed after the run finished;")
    _one_line_error(code, err, folder / name)


# (source folder, damaged file, damage, --steps of the rerun, the file the warning names, or None for none)
RECOVERIES = [
    ("full6", "checkpoint.npz", truncate, 9, "checkpoint.npz"),  # the example: extend after the damage
    ("interrupted", "checkpoint.npz", garble, 6, "checkpoint.npz"),
    ("full6", "checkpoint.prev.npz", garble, 9, None),  # the latest is intact: the previous is not read
    ("interrupted", "checkpoint.prev.npz", truncate, 6, None),
    ("full6", ".complete", truncate, 6, ".complete"),
    ("interrupted", ".complete", mark_damaged, 6, ".complete"),
]


@pytest.mark.parametrize("source, name, damage, steps, named", RECOVERIES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_damaged_file_the_folder_can_replace_warns_and_resumes_to_the_same_metrics(
    runs, tmp_path, source, name, damage, steps, named
):
    folder = copy_of(runs, source, tmp_path)
    damage(folder / name)
    code, out, err = run_cli(train_argv(steps, folder))
    assert code == 0 and "report:" in out, err
    if named is None:
        assert err == ""
    else:
        assert err.count("\n") == 1 and err.startswith(f"warning: {folder / named} "), err
    assert (folder / "metrics.csv").read_bytes() == (runs / f"full{steps}" / "metrics.csv").read_bytes()


def test_a_changed_number_in_the_metrics_resumes_from_the_checkpoint_it_agrees_with(runs, tmp_path):
    folder = copy_of(runs, "full6", tmp_path)
    lines = (folder / "metrics.csv").read_text().splitlines(keepends=True)
    cells = lines[2].split(",")  # the row of step 3: its loss, a valid number, changed
    assert cells[0] == "3"
    cells[1] = repr(1.5 * float(cells[1]))
    (folder / "metrics.csv").write_text("".join(lines[:2] + [",".join(cells)] + lines[3:]))
    code, _, err = run_cli(train_argv(6, folder))
    assert code == 0, err
    changed, damaged = err.splitlines()
    assert changed.startswith(f"warning: {folder / 'metrics.csv'} changed after the run finished;")
    assert damaged == (
        f"warning: {folder / 'metrics.csv'} is damaged (its rows before step 6 differ from those checkpoint.npz "
        "was saved with); resuming from checkpoint.prev.npz (step 3)"
    )
    assert (folder / "metrics.csv").read_bytes() == (runs / "full6" / "metrics.csv").read_bytes()


def test_both_checkpoints_damaged_is_one_line_naming_them(runs, tmp_path):
    folder = copy_of(runs, "interrupted", tmp_path)
    truncate(folder / "checkpoint.npz")
    garble(folder / "checkpoint.prev.npz")
    code, _, err = run_cli(train_argv(6, folder))
    _one_line_error(code, err, folder / "checkpoint.npz")
    assert "checkpoint.prev.npz: unreadable: BadZipFile" in err


class DiskFullHalfway:
    """A file whose first write stores half its bytes, then finds the disk full."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullAtCheckpoint:
    """``os`` for the run-folder module, where writing the ``n``-th checkpoint finds the disk full."""

    def __init__(self, n):
        self.n, self.names = n, {}

    def __getattr__(self, name):
        return getattr(os, name)

    def open(self, path, *args):
        fd = os.open(path, *args)
        self.names[fd] = os.path.basename(path)
        return fd

    def fdopen(self, fd, mode):
        f = os.fdopen(fd, mode)
        if self.names.pop(fd, "").startswith(".checkpoint.npz."):
            self.n -= 1
            if self.n == 0:
                return DiskFullHalfway(f)
        return f


def test_a_full_disk_at_a_checkpoint_keeps_the_last_good_state_and_the_rerun_the_numbers(runs, tmp_path):
    folder = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs_module, "os", FullAtCheckpoint(3))  # the checkpoint of step 9
        code, _, err = run_cli(train_argv(9, folder))
    assert code == 2
    assert err == (
        f"gdflows train: error: no space left on the device to write {folder / 'checkpoint.npz'}; {folder} still "
        "holds the last good state: free some space and rerun the same command\n"
    )
    assert not list(folder.glob(".*.tmp"))
    assert [read_checkpoint(folder / n)[0] for n in ("checkpoint.npz", "checkpoint.prev.npz")] == [6, 3]
    code, _, err = run_cli(train_argv(9, folder))
    assert code == 0 and err == ""
    assert (folder / "metrics.csv").read_bytes() == (runs / "full9" / "metrics.csv").read_bytes()


def test_a_full_disk_elsewhere_in_a_command_is_one_line_too(runs, tmp_path, monkeypatch):
    folder = copy_of(runs, "interrupted", tmp_path)
    figure = folder / "figures" / "loss.png"

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(figure))

    monkeypatch.setattr(train_module, "train", disk_full)
    code, _, err = run_cli(train_argv(6, folder))
    assert code == 2
    assert err == (
        f"gdflows train: error: no space left on the device to write {figure}; {folder} still holds the last good "
        "state: free some space and rerun the same command\n"
    )


# Below: the run-folder module alone (no training).

LAYOUT = {"theta": ((3,), "float64"), "opt_0": ((3,), "float64"), "vectors": ((None, 3), None)}
GOOD = {"theta": np.zeros(3), "opt_0": np.ones(3), "vectors": np.zeros((0, 3))}


@pytest.mark.parametrize(
    "arrays, what",
    [
        ({"theta": np.zeros(3), "vectors": np.zeros((0, 3))}, "no array 'opt_0'"),
        (GOOD | {"theta": np.zeros(4)}, "theta is float64 (4,), this run's float64 (3,)"),
        (GOOD | {"opt_0": np.ones(3, np.float32)}, "opt_0 is float32 (3,), this run's float64 (3,)"),
        (GOOD | {"vectors": np.zeros((2, 4))}, "vectors is float64 (2, 4), this run's any (None, 3)"),
        (GOOD | {"opt_1": np.ones(3)}, "arrays this run has none of: opt_1"),
    ],
)
def test_a_checkpoint_of_another_state_gives_way_to_the_previous(tmp_path, capsys, arrays, what):
    run = Run(tmp_path, {})
    run.save_checkpoint(3, GOOD, tables={"metrics": [{"step": 0, "loss": 1.0}]})
    run.save_checkpoint(6, arrays)
    run.write_table("metrics", [{"step": 0, "loss": 1.0}, {"step": 3, "loss": 0.5}])
    step, found, rows = run.resume(LAYOUT, tables=("metrics",))
    assert step == 3 and found.keys() == GOOD.keys() and rows == {"metrics": [{"step": "0", "loss": "1.0"}]}
    latest = tmp_path / "checkpoint.npz"
    warning = f"warning: {latest} is damaged ({what}); resuming from checkpoint.prev.npz (step 3)\n"
    assert capsys.readouterr().err == warning
    assert not latest.exists()  # the next checkpoint keeps the good one as the previous
    with pytest.raises(DamagedRunError, match="missing; checkpoint.prev.npz: no array 'rate'"):
        run.resume(LAYOUT | {"rate": ((), None)}, tables=("metrics",))
    assert run.resume(LAYOUT, tables=("metrics",))[0] == 3  # as after a kill between the two renames
    assert capsys.readouterr().err == f"warning: {latest} is missing; resuming from checkpoint.prev.npz (step 3)\n"


@pytest.mark.parametrize(
    "text, what",
    [
        ("step,loss\n0,1.0\n3,0.", "cut short: no newline at its end"),
        ("step,loss\n0,1.0\n3\n", "row 2: 1 cells, the header 2"),
        ('step,loss\n0,"1.0\n', "not CSV: unexpected end of data"),
        ("loss\n1.0\n", "no column 'step'"),
        ("step,loss\n0,1.0\nx3,0.5\n", "row 2: step 'x3' is not an integer"),
    ],
)
def test_a_damaged_table_is_named_with_what_is_wrong(tmp_path, text, what):
    (tmp_path / "metrics.csv").write_text(text)
    with pytest.raises(DamagedRunError) as err:
        read_csv(tmp_path / "metrics.csv", ints=("step",))
    assert str(err.value).startswith(f"{tmp_path / 'metrics.csv'} is damaged ({what}); delete {tmp_path} ")
    (tmp_path / "metrics.csv").write_bytes(b"step\n\xff\n")
    with pytest.raises(DamagedRunError, match="not UTF-8 text at byte 5"):
        read_csv(tmp_path / "metrics.csv")


def test_details_of_a_unit_a_kill_left_out_of_the_results_are_dropped(tmp_path):
    run = Run(tmp_path, {})
    results = [{"method": "gd", "seed": 0, "loss": 0.1}]
    curves = [{"method": m, "seed": 0, "step": s} for m in ("gd", "dal") for s in (0, 5)]
    run.write_keyed("results", results, "curves", curves)  # killed before the results row of dal was written
    rows, details = run.read_keyed("results", "curves", ("method", "seed"))
    assert [r["method"] for r in rows] == ["gd"] and [d["method"] for d in details] == ["gd", "gd"]
    garble(tmp_path / "results.csv")
    with pytest.raises(DamagedRunError, match="results.csv is damaged"):
        run.read_keyed("results", "curves", ("method", "seed"))
