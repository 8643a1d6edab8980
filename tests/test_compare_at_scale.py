"""compare-optimizers at scale: the method list, the tables' arithmetic, the verdict rule, the --scale flag, and a
tiny end-to-end run on generated Fashion-MNIST files checked against hand-rolled SGD."""

import math
import typing

import jax
import numpy as np
import pytest

from compare_runs import rerun_trains_nothing
from gdflows.errors import GDFlowsError
from gdflows.experiments import configs
from gdflows.experiments.cli import main
from gdflows.experiments.optimizers import compare, field_report, plans, tables
from gdflows.experiments.optimizers.spread import at_chance, failed_run, tally, versus
from gdflows.experiments.report.runs import read_csv
from gdflows.experiments.steps import batch_schedule
from gdflows.problems.network import network_problem
from test_data import make_idx_folder


@pytest.mark.parametrize("scale", ["cpu", "full"])
def test_every_method_and_both_nets_at_cpu_and_full(scale):
    plan = plans.PLANS[scale]
    names = {m.name for m in plan.methods()}
    sweep = {f"gd_lr{lr:g}" for lr in plan.lrs}
    dal = {f"dal_p{p}_{hg}" for p in (1, 2) for hg in ("hvp", "fd")} | {"dal_momentum", "dal_adam"}
    rest = {"momentum_lr0.03", "adam_lr0.001", "prodigy", "dog", "polyak", "schedule_free", "cdat"}
    assert len(sweep) >= 4 and names == sweep | dal | rest
    assert [n.model for n in plan.nets] == ["vgg", "resnet"]
    assert plan.epochs >= 3 and configs.CompareOptimizersConfig().seeds == 3
    assert typing.get_args(configs.base.CompareScale) == tuple(plans.PLANS)


def test_the_default_scale_is_cpu_and_unknown_scales_are_refused_in_one_line(capsys, tmp_path):
    assert configs.CompareOptimizersConfig().scale == "cpu"
    with pytest.raises(GDFlowsError, match="--scale 'huge' is unknown; use one of cpu, full, smoke"):
        configs.CompareOptimizersConfig(scale="huge").validate()
    with pytest.raises(SystemExit) as stop:
        main(["compare-optimizers", "--scale", "huge", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--scale" in err and "cpu" in err
    assert not (tmp_path / "x").exists()


def test_mean_std_is_the_sample_std_of_the_finite_values():
    assert tables.mean_std([1.0, 2.0, 3.0, "nan", ""]) == (2.0, 1.0)
    assert tables.mean_std([2.0, 4.0]) == (3.0, pytest.approx(math.sqrt(2.0)))
    assert tables.mean_std([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in tables.mean_std(["nan"]))


def test_value_at_reads_the_last_point_logged_within_the_time():
    times, values = [0.0, 1.0, 2.0, 3.0], [10, 11, 12, 13]
    assert [tables.value_at(times, values, t) for t in (0.0, 0.5, 2.0, 2.5, 99.0)] == [10, 10, 12, 12, 13]


def _rows():
    """vgg: two SGD rates, Adam (one seed diverged), DAL, momentum (fastest); times and metrics by hand."""

    def row(method, family, seed, time_s, acc, loss, train, diverged=False):
        return (
            dict(model="vgg", method=method, family=family, lr="", seed=seed, time_s=time_s, cpu_s=time_s)
            | dict(steps=math.floor(time_s))  # one logged step per second (see _curves)
            | dict(test_acc=acc, test_loss=loss, train_loss=train, diverged=str(diverged), ms_per_step=1.0)
            | dict(flops_per_step=100.0 if family != "dal" else 300.0)
        )

    return [
        row("gd_lr0.1", "gd", 0, 2.0, 0.70, 0.9, 0.8),
        row("gd_lr0.1", "gd", 1, 4.0, 0.72, 0.8, 0.7),
        row("gd_lr1", "gd", 0, 3.0, 0.60, 1.1, 0.5, diverged=True),
        row("gd_lr1", "gd", 1, 3.0, 0.62, 1.0, 0.4),
        row("adam_lr0.001", "adam", 0, 1.0, 0.80, 0.6, 0.3),
        row("adam_lr0.001", "adam", 1, 1.0, "nan", "nan", "nan", diverged=True),
        row("dal_p1_hvp", "dal", 0, 6.0, 0.90, 0.4, 0.2),
        row("dal_p1_hvp", "dal", 1, 6.0, 0.80, 0.5, 0.3),
        row("momentum_lr0.03", "momentum", 0, 1.5, 0.50, 0.95, 0.9),
        row("momentum_lr0.03", "momentum", 1, 1.5, 0.50, 0.95, 0.9),
        row("cdat", "cdat", 0, 1.0, 0.10, 0.5, 0.3),  # at chance: failed
        row("cdat", "cdat", 1, 1.0, 0.30, 0.5, 0.3),
        row("polyak", "polyak", 0, 1.0, 0.60, 1.3, 0.3),  # above its starting test loss (1.0): failed
        row("polyak", "polyak", 1, 1.0, 0.60, 0.9, 0.3),
    ]


def _curves(rows):
    """Each run logged at 0 and at every 1 s until its time; acc = 0.1 * time (final: the row's)."""
    out = []
    for r in rows:
        times = list(np.arange(0.0, r["time_s"] + 1e-9, 1.0))
        for i, t in enumerate(times):
            acc = r["test_acc"] if i == len(times) - 1 else 0.1 * t
            out.append(dict(model="vgg", method=r["method"], seed=str(r["seed"]), step=i, epoch=i, time_s=t))
            out[-1] |= dict(test_acc=acc, test_loss=1.0 - 0.1 * t)
    return out


def test_budget_summary_and_tuned_sgd_by_hand():
    rows = _rows()
    summary = {s["method"]: s for s in tables.summarise(rows, _curves(rows), 2000, 10)}
    assert tables.budget(list(summary.values())) == {"vgg": 3.0}  # tuned SGD's (2 + 4) / 2, not momentum's 1.5
    dal = summary["dal_p1_hvp"]
    assert (dal["test_acc"], dal["test_acc_std"]) == (pytest.approx(0.85), pytest.approx(math.sqrt(0.005)))
    assert dal["test_acc_at_T"] == pytest.approx(0.3) and dal["test_acc_at_T_std"] == 0.0  # 0.1 * 3 s, both seeds
    sgd = summary["gd_lr0.1"]  # seed 0 finished at 2 s (acc 0.70), seed 1 is at 3 s of its 4 (0.1 * 3)
    assert sgd["test_acc_at_T"] == pytest.approx(0.5) and sgd["test_acc_at_T_std"] == pytest.approx(0.4 / math.sqrt(2))
    assert summary["adam_lr0.001"]["diverged"] == 1 and summary["adam_lr0.001"]["test_acc"] == 0.8
    assert [summary[m]["failed"] for m in ("adam_lr0.001", "cdat", "polyak", "momentum_lr0.03")] == [1, 1, 1, 0]
    assert tables.tuned_sgd(list(summary.values()), "vgg")["method"] == "gd_lr0.1"  # gd_lr1 diverged once
    assert [s["method"] for s in tables.field(list(summary.values()), "vgg")] == [
        "gd_lr0.1",
        "adam_lr0.001",
        "momentum_lr0.03",
        "cdat",
        "polyak",
    ]
    assert summary["momentum_lr0.03"]["test_acc_at_T"] == 0.5  # finished before T: its final value


def test_versus_says_each_answer():
    assert versus((0.80, 0.01, False), (0.70, 0.02, False), True) == "win"  # 0.10 > sqrt(0.0005)
    assert versus((0.70, 0.01, False), (0.80, 0.02, False), True) == "loss"
    assert versus((0.80, 0.03, False), (0.76, 0.03, False), True) == "tie"  # 0.04 < 0.0424
    assert versus((0.80, 0.03, False), (0.75, 0.03, False), True) == "win"  # 0.05 > 0.0424
    assert versus((0.5, 0.0, False), (0.6, 0.0, False), False) == "win"  # lower loss wins
    assert versus((0.9, 0.0, True), (0.1, 0.0, False), True) == "failed"  # a failed method is compared with no one
    assert versus((0.1, 0.0, False), (0.9, 0.0, True), True) == "failed"  # and is nobody's loss
    assert versus((0.1, 0.0, False), (math.nan, 0.0, False), True) == "failed"
    assert tally(["win", "tie", "win", "loss", "failed"]) == {"win": 2, "tie": 1, "loss": 1, "failed": 1}


def test_a_run_fails_at_chance_above_its_start_or_diverged():
    assert at_chance(0.11, 2000, 10) and not at_chance(0.12, 2000, 10)  # Wilson lower ends 0.097 and 0.106
    assert at_chance(math.nan, 2000, 10) and not at_chance(0.3, 100, 10)
    assert not failed_run(0.8, 2000, 10, 0.5, 2.3, diverged=False)
    assert failed_run(0.8, 2000, 10, 2.3, 2.3, diverged=False)  # no lower than where it started
    assert failed_run(0.8, 2000, 10, math.nan, 2.3, diverged=False)
    assert failed_run(0.8, 2000, 10, 0.5, 2.3, diverged=True)
    assert failed_run(0.1, 2000, 10, 0.5, 2.3, diverged=False)


def test_verdict_lines_follow_the_verdicts():
    rows = _rows()
    lines = field_report.verdict_lines(tables.summarise(rows, _curves(rows), 2000, 10))
    # equal epochs, accuracy: DAL 0.85 +- 0.071 vs tuned SGD 0.71 +- 0.014: 0.14 > 0.072, a win; Adam diverged once
    assert lines[0] == (
        "- vgg, equal epochs: dal_p1_hvp (0.850 +- 0.071) beats gd_lr0.1, momentum_lr0.03; ties none; loses to "
        "none; not compared (failed): adam_lr0.001, cdat, polyak."
    )  # Adam diverged once, CDAT ended at chance once, Polyak above its starting loss once
    assert "test accuracy: DAL variants against the field: 2 wins, 0 ties, 0 losses (3 pairs with a" in lines[1]
    # F = tuned SGD's 100 FLOPs x 3 steps: DAL (300 per step) is read at step 1 (0.1 +- 0), SGD at step 3 (seed 0
    # finished at step 2 with 0.70, seed 1 at 0.3: 0.5 +- 0.283), momentum finished at step 1 (0.5): two losses
    at_f = next(line for line in lines if line.startswith("- vgg, equal FLOPs: dal_p1_hvp"))
    assert "(0.100 +- 0.000) beats none; ties none; loses to gd_lr0.1, momentum_lr0.03; not compared" in at_f
    summary = tables.summarise(rows, _curves(rows), 2000, 10)
    assert tables.flop_budget(summary) == {"vgg": 300.0}
    assert not any("wall-clock" in line for line in lines)  # one timing per run is no verdict


def test_seed_theta_is_network_problems_initialisation():
    data = compare.load_dataset("mnist_subset", n_train=20, n_test=10, dtype="float32")
    problem = network_problem("mlp", data, seed=0, dtype="float32", width=4)
    np.testing.assert_array_equal(
        compare.seed_theta(problem, 3), network_problem("mlp", data, seed=3, dtype="float32", width=4).theta0
    )


def test_smoke_run_matches_hand_rolled_sgd_and_resumes(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "fm", np.random.default_rng(0), n_train=32, n_test=9)
    cfg = configs.CompareOptimizersConfig(
        out=tmp_path / "run", scale="smoke", data_dir=tmp_path / "fm", seeds=2, methods=("gd_lr0.3",)
    )
    cfg.run()
    rows = read_csv(tmp_path / "run" / "results.csv")
    assert len(rows) == 2 and {(r["model"], r["seed"]) for r in rows} == {("vgg", "0"), ("vgg", "1")}
    plan = plans.PLANS["smoke"]
    data = compare.load(plan, plan.nets[0], tmp_path / "fm")
    steps, log_every = plan.schedule(32, 8)
    assert (steps, log_every) == (8, 2)  # 4 batches of 8 per epoch, 2 evaluations per epoch, 2 epochs
    kwargs = plan.nets[0].kwargs
    problem = network_problem("vgg", data, loss=plan.loss, seed=1, dtype=plan.dtype, **kwargs)
    theta, grad = problem.theta0, jax.jit(jax.grad(problem.batch_loss))
    for idx in batch_schedule(32, plan.regimes["minibatch"], steps, 1):
        theta = theta - 0.3 * grad(theta, data.x_train[idx], data.y_train[idx])
    row = next(r for r in rows if (r["model"], r["method"], r["seed"]) == ("vgg", "gd_lr0.3", "1"))
    expected = float(problem.batch_loss(theta, data.x_test, data.y_test))
    assert float(row["test_loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(row["epochs"]) == 2.0 and row["diverged"] == "False"
    curve = read_csv(tmp_path / "run" / "curves.csv")
    assert [float(c["epoch"]) for c in curve[:5]] == [0, 0.5, 1, 1.5, 2] and {c["rate"] for c in curve} == {"", "0.3"}
    report = (tmp_path / "run" / "REPORT.md").read_text()
    assert "## Where DAL wins and loses" in report and "DAL variants against the field" in report

    assert rerun_trains_nothing(cfg, monkeypatch) == rows
