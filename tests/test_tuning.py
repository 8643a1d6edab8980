"""The tuning protocol of compare-optimizers --scale tuned: the grids, the choice on the validation split and the
edge extensions, the phases of runs, the validation split, DAL's four claim rules, and the whole pipeline with
a stand-in trainer (each method's validation loss set by hand), resumed without retraining."""

import dataclasses
import math

import numpy as np
import pytest

from compare_runs import rerun_trains_nothing
from gdflows.data.dataset import Dataset, split_validation, stratified_order
from gdflows.errors import GDFlowsError
from gdflows.experiments import configs
from gdflows.experiments.optimizers import claims, compare, plans
from gdflows.experiments.optimizers.spread import FAILED, LOSS, TIE, WIN
from gdflows.experiments.optimizers.tuning import Knob, Tuning, choose, next_jobs, settle_all
from gdflows.experiments.optimizers.zoo import method
from gdflows.experiments.report.runs import read_csv
from gdflows.experiments.verdicts import INCONCLUSIVE, NO, YES
from test_data import make_idx_folder

SGD_KNOB = Knob("gd", "lr", 0.1, math.sqrt(10))
DAL_KNOB = Knob("dal", "p", 1.0, 2.0, (("max_lr", 5.0), ("hg", "hvp")))
TUNING = Tuning(
    knobs=(SGD_KNOB, DAL_KNOB), free=(method("polyak", max_lr=5.0),), points=3, extensions=2, multiplier_steps=2
)


def _row(name, seed=0, val_loss=1.0, diverged=False, val_acc=0.9):
    return {"method": name, "seed": str(seed), "val_loss": val_loss, "val_acc": val_acc, "val_loss_start": 2.3,
            "val_n": 1000, "classes": 10, "diverged": str(diverged)}  # fmt: skip


def test_a_grid_is_the_centre_times_the_factor_to_three_digits_and_names_its_methods():
    assert [SGD_KNOB.value(k) for k in range(-2, 3)] == [0.01, 0.0316, 0.1, 0.316, 1.0]
    assert [DAL_KNOB.value(k) for k in range(-2, 3)] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert SGD_KNOB.method(1).name == "gd_lr0.316" and SGD_KNOB.method(1).lr == 0.316
    scaled = DAL_KNOB.method(0, rate_scale=3.16)
    assert scaled.name == "dal_p1_x3.16" and scaled.family == "dal"
    assert TUNING.multipliers() == [3.16, 10.0]
    with pytest.raises(GDFlowsError, match="odd number"):
        Tuning(knobs=(SGD_KNOB, DAL_KNOB), free=(), points=4)


def test_choose_takes_the_lowest_validation_loss_and_skips_failed_points():
    assert choose({-1: 0.5, 0: 0.3, 1: None}) == 0
    assert choose({-1: None, 0: math.nan}) is None


def test_the_grid_runs_first_then_an_edge_choice_extends_it_until_inside_or_out_of_extensions():
    first = next_jobs(TUNING, [], seeds=3)
    assert {(m.name, s) for m, s in first} == {("gd_lr0.0316", 0), ("gd_lr0.1", 0), ("gd_lr0.316", 0),
                                                ("dal_p0.5", 0), ("dal_p1", 0), ("dal_p2", 0)}  # fmt: skip
    # SGD's best at the top edge: one more point above; DAL's best inside: settled.
    rows = [_row("gd_lr0.0316", val_loss=0.9), _row("gd_lr0.1", val_loss=0.7), _row("gd_lr0.316", val_loss=0.5)]
    rows += [_row("dal_p0.5", val_loss=0.8), _row("dal_p1", val_loss=0.6), _row("dal_p2", val_loss=0.7)]
    assert [(m.name, s) for m, s in next_jobs(TUNING, rows, 3)] == [("gd_lr1", 0)]
    rows.append(_row("gd_lr1", val_loss=0.4))  # still at the edge: a second extension
    assert [(m.name, s) for m, s in next_jobs(TUNING, rows, 3)] == [("gd_lr3.16", 0)]
    rows.append(_row("gd_lr3.16", diverged=True, val_loss=math.nan))  # failed: lr 1 is now inside the grid
    sgd, dal = settle_all(TUNING, rows)
    assert (sgd.ks, sgd.chosen, sgd.at_edge) == ((-1, 0, 1, 2, 3), 2, False)
    assert (dal.chosen, dal.at_edge) == (0, False)


def test_a_choice_still_at_the_edge_after_every_extension_is_reported_as_such():
    rows = [_row(SGD_KNOB.method_name(k), val_loss=1.0 - 0.1 * k) for k in range(-1, 4)]
    rows += [_row(DAL_KNOB.method_name(k), val_loss=0.5) for k in (-1, 0, 1)]
    sgd = settle_all(TUNING, rows)[0]
    assert (sgd.chosen, sgd.at_edge, sgd.missing) == (3, True, ())


def test_when_every_point_fails_the_grid_extends_downwards():
    rows = [_row(SGD_KNOB.method_name(k), diverged=True) for k in (-1, 0, 1)]
    rows += [_row(DAL_KNOB.method_name(k), val_loss=abs(k) + 0.5) for k in (-1, 0, 1)]
    assert [m.name for m, _ in next_jobs(TUNING, rows, 3)] == ["gd_lr0.01"]


def test_a_choice_that_fails_on_another_seed_gives_way_to_the_next_point():
    rows = [_row(SGD_KNOB.method_name(k), val_loss=0.5 - 0.1 * k) for k in (-1, 0, 1)]  # best at the top edge
    rows += [_row("gd_lr1", val_loss=0.7), *[_row(DAL_KNOB.method_name(k), val_loss=abs(k) + 0.5) for k in (-1, 0, 1)]]
    assert [(m.name, s) for m, s in next_jobs(TUNING, rows, 3)] == [
        ("gd_lr0.316", 1),
        ("gd_lr0.316", 2),
        ("dal_p1", 1),
        ("dal_p1", 2),
    ]
    rows += [_row("gd_lr0.316", 1, diverged=True, val_loss=math.nan), _row("gd_lr0.316", 2)]
    rows += [_row("dal_p1", 1), _row("dal_p1", 2)]
    sgd = settle_all(TUNING, rows)[0]
    assert SGD_KNOB.value(sgd.chosen) == 0.1 and not sgd.at_edge  # lr 0.316 failed on seed 1
    assert [(m.name, s) for m, s in next_jobs(TUNING, rows, 3)] == [("gd_lr0.1", 1), ("gd_lr0.1", 2)]


def test_once_settled_the_seeds_the_grid_the_free_group_and_the_multipliers_run():
    rows = [_row(SGD_KNOB.method_name(k), val_loss=abs(k) + 0.5) for k in (-1, 0, 1)]
    rows += [_row(DAL_KNOB.method_name(k), val_loss=abs(k - 1) + 0.5) for k in (-1, 0, 1, 2)]
    confirm = next_jobs(TUNING, rows, seeds=2)
    assert {(m.name, s) for m, s in confirm} == {("gd_lr0.1", 1), ("dal_p2", 1)}  # the choices' other seeds first
    rows += [_row(m.name, s) for m, s in confirm]
    jobs = next_jobs(TUNING, rows, seeds=2)
    names = {m.name: m for m, _ in jobs}
    # chosen: SGD lr 0.1 (k = 0), DAL p = 2 (k = 1, inside after one extension)
    assert {(m.name, s) for m, s in jobs} >= {("gd_lr0.0316", 1), ("dal_p1", 1)}
    assert {("polyak", 0), ("polyak", 1), ("dal_p2_x3.16", 0), ("dal_p2_x10", 1), ("gd_lr1", 0)} <= {
        (m.name, s) for m, s in jobs
    }
    assert ("gd_lr0.316", 1) in {(m.name, s) for m, s in jobs}  # a grid point and SGD's x3.16
    assert not {(m.name, str(s)) for m, s in jobs} & {(r["method"], r["seed"]) for r in rows}
    assert names["dal_p2_x10"].make() is not None
    done = rows + [_row(m.name, s) for m, s in jobs]
    assert next_jobs(TUNING, done, seeds=2) == []


def test_the_validation_split_is_class_balanced_disjoint_and_leaves_the_first_training_images():
    x = np.arange(60, dtype=float).reshape(60, 1, 1, 1)
    y = np.arange(60) % 3
    data = Dataset(x, y, x[:6], y[:6], 3, "t")
    split = split_validation(data, 12)
    assert len(split.y_train) == 48 and len(split.y_val) == 12
    assert np.bincount(split.y_val).tolist() == [4, 4, 4]
    assert set(split.x_train.ravel()).isdisjoint(split.x_val.ravel())
    first = np.sort(stratified_order(y)[:48])
    assert np.array_equal(split.x_train.ravel(), x[first].ravel())
    with pytest.raises(GDFlowsError, match="n_val must be an integer in"):
        split_validation(data, 60)


def test_claim_beats_says_each_answer():
    assert claims.beats(WIN).answer == YES
    assert claims.beats(LOSS).answer == NO
    assert claims.beats(TIE).answer == INCONCLUSIVE
    assert claims.beats(FAILED).answer == INCONCLUSIVE
    assert claims.beats(WIN, dal_failed=True).answer == NO


def test_claim_beats_most_of_the_grid_says_each_answer_and_ignores_failed_rates():
    assert claims.beats_most_of_grid([WIN, WIN, LOSS, FAILED]).answer == YES  # 2 of 3 that trained
    assert claims.beats_most_of_grid([WIN, LOSS, LOSS, TIE]).answer == NO  # wins + ties = 2 of 4
    assert claims.beats_most_of_grid([WIN, TIE, TIE, LOSS]).answer == INCONCLUSIVE
    assert claims.beats_most_of_grid([FAILED, FAILED]).answer == INCONCLUSIVE
    assert claims.beats_most_of_grid([WIN, WIN], dal_failed=True).answer == NO


def test_claim_beats_every_tuning_free_method_says_each_answer():
    assert claims.beats_every({"dog": WIN, "cdat": FAILED}).answer == YES
    assert claims.beats_every({"dog": WIN, "prodigy": LOSS}).answer == NO
    assert claims.beats_every({"dog": WIN, "prodigy": TIE}).answer == INCONCLUSIVE
    assert claims.beats_every({"cdat": FAILED}).answer == INCONCLUSIVE
    assert claims.beats_every({"dog": WIN}, dal_failed=True).answer == NO


def test_claim_more_stable_compares_the_largest_multiplier_before_a_failure():
    assert claims.stable_up_to({1: False, 3: False, 10: True, 30: False}) == 3
    assert claims.stable_up_to({1: True, 3: False}) == 0
    assert claims.more_stable({1: False, 3: False, 10: True}, {1: False, 3: True, 10: True}).answer == YES
    assert claims.more_stable({1: False, 3: True, 10: True}, {1: False, 3: False, 10: True}).answer == NO
    both = claims.more_stable({1: False, 3: False}, {1: False, 3: False})
    assert both.answer == INCONCLUSIVE and "x3" in both.why
    with pytest.raises(ValueError, match="same multipliers"):
        claims.more_stable({1: False}, {3: False})


def test_tuned_scales_refuse_methods_and_quick():
    with pytest.raises(GDFlowsError, match="drop --methods"):
        configs.CompareOptimizersConfig(scale="tuned", methods=("gd_lr0.1",)).validate()
    with pytest.raises(GDFlowsError, match="--quick"):
        configs.CompareOptimizersConfig(scale="tuned", quick=True).validate()


def test_the_tuned_plan_meets_the_protocol():
    plan = plans.PLANS["tuned"]
    t = plan.tuning
    assert plan.n_test is None and plan.n_val >= 1000 and plan.epochs >= 10
    assert all(n.n_train >= 10000 for n in plan.nets) and [n.model for n in plan.nets] == ["vgg", "resnet"]
    assert {k.family for k in t.knobs} == {"gd", "momentum", "adam", "schedule_free", "dal"}
    assert {m.name for m in t.free} == {"prodigy", "dog", "polyak", "cdat"} and t.points == 5
    assert DAL_KNOB.value(t.dal_default) == 1.0


class _StandIn:
    """Trainer stand-in: no compilation; train_run below sets each method's numbers by hand."""

    def __init__(self, problem, plan, method, batch_size, sharpness=None):
        self.problem, self.plan, self.method = problem, plan, method


def _stand_in_run(trainer, seed):
    """Validation loss: SGD best at lr 0.1, DAL best at p = 1; Polyak and the x3.16 multipliers diverge at
    SGD, not at DAL; test accuracy: DAL 0.85, SGD 0.8 - 0.1 |log10(lr / 0.1)| (+ seed noise 0.001)."""
    m = trainer.method
    value = float(m.name.split("_lr")[-1]) if m.family == "gd" else None
    diverged = m.name == "polyak" or (value is not None and value > 0.2)
    if m.family == "dal":
        val, acc = 0.5 + abs(math.log2(float(m.name[5:].split("_")[0]))), 0.85
    elif m.family == "gd":
        val, acc = 0.5 + abs(math.log10(value / 0.1)), 0.8 - 0.1 * abs(math.log10(value / 0.1))
    else:
        val, acc = math.nan, 0.1
    acc += 0.001 * seed
    loss = 1.0 - acc if not diverged else math.nan
    start = {"step": 0, "epoch": 0.0, "time_s": 0.0, "cpu_s": 0.0, "test_loss": 2.3, "test_acc": 0.1,
             "val_loss": 2.3, "val_acc": 0.1}  # fmt: skip
    end = start | {"step": 12, "epoch": 2.0, "time_s": 1.0, "cpu_s": 1.0, "test_loss": loss, "test_acc": acc}
    end |= {"val_loss": val if not diverged else math.nan, "val_acc": 0.9 if not diverged else math.nan}
    facts = {"steps": 12, "epochs": 2.0, "train_loss": loss, "train_acc": acc, "test_loss": loss, "test_acc": acc,
             "test_n": 1000, "val_loss": end["val_loss"], "val_acc": end["val_acc"], "val_loss_start": 2.3,
             "val_n": 1000, "classes": 10, "diverged": diverged, "diverged_at": "", "time_s": 1.0, "cpu_s": 1.0,
             "ms_per_step": 1.0, "flops_per_step": 3e6 if m.family == "dal" else 1e6}  # fmt: skip
    return [start, end], facts


def test_the_tuned_pipeline_runs_the_protocol_writes_the_claims_and_resumes(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "fm", np.random.default_rng(0), n_train=48, n_test=9)
    monkeypatch.setattr(compare, "Trainer", _StandIn)
    monkeypatch.setattr(compare, "train_run", _stand_in_run)
    cfg = configs.CompareOptimizersConfig(out=tmp_path / "run", scale="tuned_smoke", data_dir=tmp_path / "fm", seeds=2)
    cfg.run()
    rows = read_csv(tmp_path / "run" / "results.csv")
    ran = {(r["method"], r["seed"]) for r in rows}
    assert ("gd_lr0.1", "1") in ran and ("dal_p1", "1") in ran and ("gd_lr0.01", "0") not in ran
    assert {("dal_p1_x3.16", "1"), ("gd_lr0.316", "1"), ("polyak", "1"), ("dal_p0.5", "0")} <= ran
    assert ("dal_p0.5", "1") not in ran and ("dal_p2", "1") not in ran
    tuning = read_csv(tmp_path / "run" / "tuning.csv")
    chosen = {(t["family"], t["value"]) for t in tuning if t["chosen"] == "True"}
    assert {t["seeds_failed"] for t in tuning if t["value"] == "0.316"} == {"2/2"}
    assert chosen == {("gd", "0.1"), ("dal", "1.0")}
    verdicts = {(c["claim"], c["budget"], c["metric"]): c["verdict"] for c in read_csv(tmp_path / "run" / "claims.csv")}
    assert verdicts[("untuned DAL beats most of SGD's grid", "equal epochs", "test_acc")] == YES
    assert verdicts[("tuned DAL beats tuned SGD", "equal epochs", "test_acc")] == YES
    assert verdicts[("untuned DAL beats every tuning-free method", "equal epochs", "test_acc")] == INCONCLUSIVE
    assert verdicts[("DAL stays stable at larger rate multipliers than SGD", "-", "failed seeds")] == YES
    tallies = read_csv(tmp_path / "run" / "tally.csv")
    first = tallies[0]
    assert (first["budget"], first["metric"], first["win"], first["failed"]) == ("equal epochs", "test_acc", "1", "1")
    report = (tmp_path / "run" / "REPORT.md").read_text()
    assert "tuned DAL beats tuned SGD: **yes**" in report and "DAL stays stable" in report

    assert rerun_trains_nothing(cfg, monkeypatch) == rows


def test_the_validation_split_reaches_the_problem_and_its_loss_is_the_mean_over_it(tmp_path):
    from gdflows.problems.network import network_problem

    make_idx_folder(tmp_path / "fm", np.random.default_rng(1), n_train=48, n_test=9)
    plan = plans.PLANS["tuned_smoke"]
    data = compare.load(plan, plan.nets[0], tmp_path / "fm")
    assert (len(data.y_train), len(data.y_val), data.x_val.shape[1:]) == (32, 16, (14, 14, 1))
    problem = network_problem("vgg", data, loss=plan.loss, seed=0, dtype=plan.dtype, **plan.nets[0].kwargs)
    loss, acc = problem.evaluate(problem.theta0, "val")
    assert float(loss) == pytest.approx(float(problem.batch_loss(problem.theta0, data.x_val, data.y_val)), rel=1e-5)
    assert 0 <= float(acc) <= 1
    with pytest.raises(GDFlowsError, match="split must be one of train, test\\b"):
        network_problem("vgg", dataclasses.replace(data, x_val=None, y_val=None), **plan.nets[0].kwargs).evaluate(
            problem.theta0, "val"
        )
