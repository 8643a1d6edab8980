"""Run folders: identity without out and steps, conflicts that name their keys, normal file permissions,
nothing created for a bad config, and one run's life through the command line: Ctrl-C, resume, a rerun of
the finished run that computes and compiles nothing, and an extension to more steps that equals an
uninterrupted longer run."""

import importlib.util
import json
import os
import signal
from pathlib import Path

import jax
import pytest

from cli_runs import interrupted_at_diagnosis, run_cli, train_argv
from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import NetworkSetup, TrainConfig
from gdflows.experiments.report.runs import Run, config_conflicts


class CompileCounter:
    """XLA compilations (backend compile events) while the block runs."""

    def __init__(self):
        self.count = 0

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    """One run interrupted, resumed, rerun when finished, extended; and a fresh longer run to compare with."""
    root = tmp_path_factory.mktemp("life")
    a, b = root / "a", root / "b"
    facts = {"a": a, "b": b}
    with interrupted_at_diagnosis(2):
        facts["interrupted"] = run_cli(train_argv(6, a))
    with CompileCounter() as first:
        facts["resumed"] = run_cli(train_argv(6, a))
    facts["first_compiles"] = first.count
    mtime = (a / "REPORT.md").stat().st_mtime_ns
    with CompileCounter() as again:
        facts["rerun"] = run_cli(train_argv(6, a))
    facts["rerun_compiles"] = again.count
    facts["report_untouched"] = (a / "REPORT.md").stat().st_mtime_ns == mtime
    facts["extended"] = run_cli(train_argv(12, a))
    facts["fresh"] = run_cli(train_argv(12, b))
    return facts


def test_ctrl_c_says_where_the_run_stands_and_the_same_command_resumes(life):
    code, _, err = life["interrupted"]
    assert code == 130
    assert err.strip() == (
        f"gdflows train: interrupted: {life['a']} holds the run up to step 3 of 6; rerun the same command to resume"
    )
    assert life["resumed"][0] == 0 and "report:" in life["resumed"][1]


def test_sigterm_stops_a_run_as_ctrl_c_does_and_the_same_command_resumes(tmp_path):
    """kill / timeout / a scheduler's preemption: the way to stop a background run, which ignores SIGINT."""
    before = signal.getsignal(signal.SIGTERM)
    with interrupted_at_diagnosis(2, by_sigterm=True):
        code, _, err = run_cli(train_argv(6, tmp_path))
    assert code == 130
    assert err.strip() == (
        f"gdflows train: interrupted: {tmp_path} holds the run up to step 3 of 6; rerun the same command to resume"
    )
    assert signal.getsignal(signal.SIGTERM) is before
    code, out, _ = run_cli(train_argv(6, tmp_path))
    assert code == 0 and "report:" in out
    assert [line.split(",")[0] for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]] == ["0", "3", "6"]


def test_a_finished_run_is_not_recomputed_or_recompiled(life):
    code, out, _ = life["rerun"]
    assert code == 0 and out.strip() == f"complete: {life['a'] / 'REPORT.md'}"
    assert life["first_compiles"] > 0  # the counter sees compilations when there are some
    assert life["rerun_compiles"] == 0 and life["report_untouched"]


def test_a_larger_steps_extends_the_run_to_the_uninterrupted_numbers(life):
    assert life["extended"][0] == 0 and life["fresh"][0] == 0
    a, b = life["a"], life["b"]
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    steps = [line.split(",")[0] for line in (a / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["0", "3", "6", "9", "12"]
    assert json.loads((a / "config.json").read_text())["steps"] == 12
    assert "out" not in json.loads((a / "config.json").read_text())


def test_a_run_that_ended_on_its_edge_diagnoses_extends_without_its_checkpoints(tmp_path, monkeypatch):
    """edge-at 0.01: every diagnosis is at the edge, so the run ends after 2 (steps 0 and 3) whatever the budget;
    a larger --steps then keeps its rows and trains nothing, even with its checkpoints gone."""
    from gdflows.experiments import train as train_module

    edge = ["--edge-at", "0.01", "--edge-diagnoses", "2"]
    assert run_cli(train_argv(30, tmp_path)[:-2] + edge + ["--out", str(tmp_path)])[0] == 0
    rows = (tmp_path / "metrics.csv").read_bytes()
    assert [line.split(",")[0] for line in rows.decode().splitlines()[1:]] == ["0", "3"]
    for checkpoint in tmp_path.glob("checkpoint*.npz"):
        checkpoint.unlink()
    monkeypatch.setattr(train_module, "train", lambda *a: pytest.fail("an ended run was trained again"))
    code, out, _ = run_cli(train_argv(60, tmp_path)[:-2] + edge + ["--out", str(tmp_path)])
    assert code == 0 and "report:" in out
    assert (tmp_path / "metrics.csv").read_bytes() == rows
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 60
    assert run_cli(train_argv(60, tmp_path)[:-2] + edge + ["--out", str(tmp_path)])[1].startswith("complete:")


def test_a_bad_config_creates_no_folder(tmp_path):
    bad = {
        "--lr": TrainConfig(out=tmp_path / "lr", lr=-0.1),
        "--net.model": TrainConfig(out=tmp_path / "model", net=NetworkSetup(model="transformer")),
        "--net.dataset": TrainConfig(out=tmp_path / "data", net=NetworkSetup(dataset="imagenet")),
        "--net.data-dir": TrainConfig(out=tmp_path / "dir", net=NetworkSetup(dataset="mnist", data_dir=tmp_path / "x")),
        "--k": TrainConfig(out=tmp_path / "k", k=10**6, net=NetworkSetup(n_train=10, downsample=7, width=2, depth=1)),
    }
    for flag, cfg in bad.items():
        with pytest.raises(GDFlowsError, match=flag):
            cfg.run()
        assert not cfg.out.exists(), flag


def test_a_conflict_names_the_keys_that_differ(tmp_path, monkeypatch):
    Run.open(tmp_path / "r", TrainConfig(out=tmp_path / "r", lr=0.05, steps=6))
    with pytest.raises(GDFlowsError, match=r"lr: 0\.05 in the folder, 0\.1 now; net\.width: 32 in the folder, 16 now"):
        Run.prepare(tmp_path / "r", TrainConfig(lr=0.1, steps=6, net=NetworkSetup(width=16)), extendable=("steps",))
    with pytest.raises(GDFlowsError, match="steps 3 < the 6 this folder holds"):
        Run.prepare(tmp_path / "r", TrainConfig(lr=0.05, steps=3), extendable=("steps",))
    with pytest.raises(GDFlowsError, match="steps: 6 in the folder, 9 now"):
        Run.prepare(tmp_path / "r", TrainConfig(lr=0.05, steps=9))  # not extendable for this command
    Run.prepare(tmp_path / "r", TrainConfig(lr=0.05, steps=9), extendable=("steps",))  # extends
    monkeypatch.chdir(tmp_path)  # a relative and an absolute path to the same folder are the same run
    Run.prepare("r", TrainConfig(out="r", lr=0.05, steps=6))
    assert config_conflicts({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b: 1 in the folder, 2 now"]
    # a list key that may be extended: entries added (any order) reopen it, an entry left out does not
    assert config_conflicts({"s": [1, 2]}, {"s": [3, 2, 1]}, extendable=("s",)) == []
    assert config_conflicts({"s": [1, 2]}, {"s": [2, 3]}, extendable=("s",)) == [
        "s leaves out [1] that this folder holds (a list keeping them extends it)"
    ]
    assert config_conflicts({"s": [1, 2]}, {"s": [1, 2, 3]}) == ["s: [1, 2] in the folder, [1, 2, 3] now"]
    # a switch added after the folder was written reopens it when off, not when on
    assert config_conflicts({"a": 1}, {"a": 1, "pf_step": False}) == []
    assert config_conflicts({"a": 1}, {"a": 1, "pf_step": True}) == ["pf_step: '(absent)' in the folder, True now"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_usual_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = Run.open(tmp_path / "r", TrainConfig())
        run.write_text("REPORT.md", "x")
        run.write_table("metrics", [{"a": 1}])
    finally:
        os.umask(old)
    for name in ("config.json", "REPORT.md", "metrics.csv"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == mode, name
    assert not list((tmp_path / "r").glob(".*.tmp"))


def _merge_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "merge_run_folders.py"
    spec = importlib.util.spec_from_file_location("merge_run_folders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_merged_run_folders_hold_every_run_and_no_stale_finish_marker(tmp_path, capsys):
    """benchmarks/merge_run_folders.py: the union of the run subfolders (their own finish markers kept), the
    union of timings.csv's rows (merging again adds none), the sources' top-level finish markers left out; a
    finished run replaces an unfinished one of the same name, never the other way, and an unfinished one
    replaces a shorter unfinished one."""
    for name, run in (("a", "vgg_lr0.03_s0"), ("b", "vgg_lr0.03_s1")):
        src = tmp_path / name
        (src / run).mkdir(parents=True)
        (src / run / ".complete").write_text("{}")
        (src / ".complete").write_text('{"report": "REPORT.md"}')
        for derived in ("summary.csv", "predictors.csv", "bursts.csv", "step_errors.csv"):
            (src / derived).write_text(f"run\nstale {name}\n")  # the report's tables: rewritten, never appended
        (src / "timings.csv").write_text(f"run,wall_s,cpu_s\n{run},1.0,2.0\n")
    dest, merge = tmp_path / "merged", _merge_module().merge
    merge(dest, [tmp_path / "a", tmp_path / "b"])
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["vgg_lr0.03_s0", "vgg_lr0.03_s1"]
    assert (dest / "vgg_lr0.03_s1" / ".complete").exists() and (dest / "vgg_lr0.03_s0" / ".complete").exists()
    assert not (dest / ".complete").exists()
    for derived in ("summary.csv", "predictors.csv", "bursts.csv", "step_errors.csv"):
        assert (dest / derived).read_text().splitlines() == ["run", "stale a"]
    assert (dest / "timings.csv").read_text().splitlines()[1:] == ["vgg_lr0.03_s0,1.0,2.0", "vgg_lr0.03_s1,1.0,2.0"]
    merge(dest, [tmp_path / "b"])  # merging again adds nothing
    assert len((dest / "timings.csv").read_text().splitlines()) == 3
    assert "+ 0 rows of timings.csv" in capsys.readouterr().out
    # an unfinished run in DEST gives way to the same run further along or finished elsewhere, and only then
    (dest / "vgg_lr0.03_s1" / ".complete").unlink()
    (dest / "vgg_lr0.03_s1" / "metrics.csv").write_text("step\n0\n50\n")
    elsewhere = tmp_path / "c" / "vgg_lr0.03_s1"
    elsewhere.mkdir(parents=True)
    (elsewhere / "metrics.csv").write_text("step\n0\n")
    merge(dest, [tmp_path / "c"])  # unfinished there too and shorter: DEST's stays
    assert (dest / "vgg_lr0.03_s1" / "metrics.csv").read_text() == "step\n0\n50\n"
    (elsewhere / "metrics.csv").write_text("step\n0\n50\n100\n")
    # resumed from DEST's copy, its timings row adds up both sessions: it replaces DEST's row, not beside it
    (tmp_path / "c" / "timings.csv").write_text("run,wall_s,cpu_s\nvgg_lr0.03_s1,3.0,5.0\n")
    merge(dest, [tmp_path / "c"])  # unfinished and further along: it replaces DEST's
    assert (dest / "vgg_lr0.03_s1" / "metrics.csv").read_text() == "step\n0\n50\n100\n"
    assert "replaced by" in capsys.readouterr().out
    timings = (dest / "timings.csv").read_text().splitlines()[1:]
    assert timings == ["vgg_lr0.03_s0,1.0,2.0", "vgg_lr0.03_s1,3.0,5.0"]
    (elsewhere / "metrics.csv").write_text("step\n0\n100\n")
    (elsewhere / ".complete").write_text("{}")
    merge(dest, [tmp_path / "c"])
    assert (dest / "vgg_lr0.03_s1" / "metrics.csv").read_text() == "step\n0\n100\n"
    assert (dest / "vgg_lr0.03_s1" / ".complete").exists()
    merge(dest, [tmp_path / "b"])  # a finished run is never replaced
    assert (dest / "vgg_lr0.03_s1" / "metrics.csv").read_text() == "step\n0\n100\n"
