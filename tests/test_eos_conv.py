"""gdflows eos-conv on hand-made metrics rows: the summary and its prose say whether the sharpness reached 2/h;
its config refuses bad input in one line; the paper plan (eos-conv at the accelerator size and compare-optimizers
--scale full) builds its nets and names its sizes without running; PAPER_SCALE.md from a folder of sub-runs."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from gdflows.data import downsample, load_dataset
from gdflows.errors import GDFlowsError
from gdflows.experiments import eos_conv, paper_scale
from gdflows.experiments.cli import main
from gdflows.experiments.configs import EosConvConfig, NetworkSetup, TrainConfig
from gdflows.experiments.eos_conv import (
    edge_band,
    flags,
    group_prose,
    pooled_predictors,
    run_metrics,
    run_name,
    summary_prose,
    summary_row,
    train_configs,
)
from gdflows.experiments.errors import RunInterrupted
from gdflows.experiments.paper_scale import PaperScale
from gdflows.experiments.report import timings
from gdflows.experiments.report.runs import Run
from gdflows.experiments.report.timings import add_time, cpu_text
from gdflows.experiments.reproduce import scale_plan
from gdflows.experiments.verdicts import Verdict
from gdflows.models import get_model
from test_data import make_idx_folder

LR = 0.1  # 2/h = 20


def _rows(lam, sign_right=True):
    """Rows 10 steps apart with lambda_0 = ``lam``; the loss falls on odd rows and rises on even ones, and
    the PF's dE/dt has the observed sign (or always says "down"); Re(sc_0) = 0.01 i."""
    rows = []
    for i, lam_i in enumerate(lam):
        change = 0.1 if i % 2 == 0 else -0.1
        rows.append(
            {
                "step": 10 * i,
                "two_over_h": 2 / LR,
                "lambda_0": lam_i,
                "loss": 1.0,
                "loss_next": 1.0 + change,
                "dE_dt": change if sign_right else -1.0,
                "curvature_loss": 1.0,
                "sc_0_re": 0.01 * i,
                "c_0": 1.0,
                "c_0_next": -1.0,
                "outcome": "",
            }
        )
    rows[-1]["outcome"] = "completed"
    return rows


RISE = list(np.linspace(10.0, 20.0, 10)) + [20.0] * 20  # below 18 before step 80, at the edge from then on
FLAT = [10.0] * 30  # h lambda_0 = 1 throughout


def test_summary_and_prose_say_yes_when_the_sharpness_reaches_two_over_h_and_no_when_it_never_does():
    rise, flat = summary_row("vgg", LR, _rows(RISE)), summary_row("resnet", LR, _rows(FLAT))
    assert rise["reached_edge"] == "yes" and rise["first_at_edge"] == 90  # the edge 0.98 x 20: 18.9 at row 8, 20 at 9
    # from row 9 on lambda_0 = 2/h: 21 diagnoses at the edge in a band of width 0
    assert rise["at_edge"] == 21 and rise["band_max"] == 0 and rise["band_mean"] == 0
    wide = summary_row("vgg", LR, _rows(RISE), edge_at=0.9)  # the edge at 0.9 x 2/h: from row 8 (18.89 / 20)
    assert wide["first_at_edge"] == 80 and wide["at_edge"] == 22 and wide["band_max"] == pytest.approx(1 - 170 / 9 / 20)
    assert wide["band_mean"] == pytest.approx((1 - 170 / 9 / 20) / 22)
    assert rise["hl0_start"] == pytest.approx(1.0) and rise["hl0_end"] == pytest.approx(2.0)
    assert rise["hl0_max"] == pytest.approx(2.0) and rise["hl0_max_at"] == 90  # the first row at 20
    peaked = summary_row("resnet", LR, _rows([10.0, 17.0, 18.5, 16.0] + [15.0] * 26))
    assert (peaked["hl0_max"], peaked["hl0_max_at"], peaked["reached_edge"]) == (pytest.approx(1.85), 20, "no")
    text = group_prose("resnet", LR, [rise, peaked], None)
    assert "1 of 2 runs reached the edge" in text
    assert "The other 1 stayed below it: h lambda_0 peaked at 1.85 at step 20 (then 1.50, completed)." in text
    assert rise["verdict"] == "yes" and rise["edge_of_stability"] == "yes"
    # Re(sc_0) over the last third: rows with step >= 2/3 of 290, i.e. i = 20..29, mean 0.01 * 24.5
    assert rise["re_sc0_last_third"] == pytest.approx(0.245)
    assert rise["sign_agreement"] == 1.0 and rise["majority_baseline"] == 0.5 and rise["sign"] == "yes"
    assert flat["reached_edge"] == "no" and flat["first_at_edge"] == "" and flat["edge_of_stability"] == "no"
    assert flat["verdict"].startswith("partly: edge no, sign yes")
    assert flat["at_edge"] == 0 and "band_max" not in flat
    lazy = summary_row("vgg", LR, _rows(FLAT, sign_right=False))  # always "down": right half the time
    # it is gradient flow itself: 30 identical steps cannot exclude a 10-point gain, so inconclusive
    assert lazy["verdict"] == "no: edge no, sign inconclusive" and lazy["sign"] == "inconclusive"


def _write_runs(folder, cfg, rows_of):
    """metrics.csv of each of ``cfg``'s runs from ``rows_of(model, lr, seed)`` (None: no folder)."""
    for train in train_configs(cfg):
        rows = rows_of(train.net.model, train.lr, train.net.seed)
        if rows is not None:
            (folder / train.out.name).mkdir(parents=True)
            Run(folder / train.out.name, {}).write_table("metrics", rows)


def test_the_seeds_pool_into_one_predictor_verdict_per_net_and_rate_and_the_prose_follows_it(tmp_path):
    cfg = EosConvConfig(out=tmp_path, vgg_lrs=(LR,), resnet_lrs=(LR,), seeds=(0, 1, 2), steps=290, log_every=10)
    # VGG: every seed rises to the edge and the PF has every sign right; ResNet: flat, the PF always says down
    _write_runs(tmp_path, cfg, lambda m, lr, seed: _rows(RISE) if m == "vgg" else _rows(FLAT, sign_right=False))
    rows, pooled = (
        [summary_row("vgg", LR, _rows(RISE), seed=s) for s in range(3)],
        pooled_predictors(run_metrics(tmp_path, cfg), cfg),
    )
    pf = {p["model"]: p for p in pooled if p["predictor"] == "PF dE/dt"}
    assert pf["vgg"]["steps"] == pf["resnet"]["steps"] == 90  # 3 seeds x 30 steps above noise
    # VGG: 90 right against the majority's 45 (b = 45 of d = 45 discordant): yes against every baseline
    assert pf["vgg"]["accuracy"] == 1.0 and pf["vgg"]["beats_baselines"].answer == "yes"
    # ResNet: it is gradient flow; one run's 30 steps could not exclude a 10-point gain over it (see above),
    # three seeds' 90 can (no discordant step: d/n <= 3.3%), so pooling turns "inconclusive" into "no"
    assert pf["resnet"]["accuracy"] == 0.5 and pf["resnet"]["beats_baselines"].answer == "no"
    rows += [summary_row("resnet", LR, _rows(FLAT, sign_right=False), seed=s) for s in range(3)]
    vgg, resnet, overall = summary_prose(rows, pooled).split("\n\n")
    assert vgg.startswith("**VGG, h = 0.1** (3 seeds).") and "3 of 3 runs reached the edge" in vgg
    assert "first at steps 90, 90, 90" in vgg and "better than every baseline" in vgg and "Edge of stability" in vgg
    assert "No run reached the edge" in resnet and "does not predict the loss change's sign better" in resnet
    assert "h lambda_0 peaked at 1.00 at step 0 (then 1.00, completed), 1.00 at step 0" in resnet
    assert "stayed below it" not in vgg and "peaked" not in vgg
    assert "reached the edge (lambda_0 >= 0.98 x 2/h) in 3 of 6 runs" in overall and "in 3;" in overall
    assert "for 1 of 2 net-rate pairs, did not for 1, and 0 were inconclusive" in overall
    one = summary_prose(rows[:1], [p for p in pooled if p["model"] == "vgg"]).split("\n\n")[0]
    assert one.startswith("**VGG, h = 0.1** (1 seed).")


def test_hovering_needs_the_band_kept_over_enough_diagnoses_from_the_first_at_the_edge():
    late = summary_row("vgg", LR, _rows([10.0] * 25 + [20.0] * 5))  # at the edge for the last 5 diagnoses only
    assert late["reached_edge"] == "yes" and late["at_edge"] == 5 and late["edge_of_stability"] == "no"
    catapult = summary_row("vgg", LR, _rows(RISE[:20] + [15.0] + RISE[20:29]))  # drops to 0.75 x 2/h once
    assert catapult["band_max"] == pytest.approx(0.25) and catapult["edge_of_stability"] == "no"
    assert catapult["verdict"].startswith("partly: edge no")


def test_the_band_after_the_edge_is_measured_from_the_first_step_at_it():
    rows = [{"step": s, "lambda_0": lam, "two_over_h": 20.0} for s, lam in ((0, 10.0), (10, 19.0), (20, 22.0))]
    band = {"at_edge": 2, "band_mean": pytest.approx(0.075), "band_max": pytest.approx(0.1), "above_2h": 1}
    assert edge_band(rows, 10) == band  # 19 < 20 <= 22: one of the two at the edge crosses 2/h


def test_a_run_that_creeps_up_to_two_over_h_hovers_by_the_band_and_the_prose_says_it_never_crossed():
    creep = summary_row("vgg", LR, _rows(list(np.linspace(10.0, 19.6, 10)) + list(np.linspace(19.6, 19.9, 20))))
    assert creep["edge_of_stability"] == "yes" and creep["at_edge"] == 21 and creep["above_2h"] == 0
    hover = summary_row("vgg", LR, _rows(list(np.linspace(10.0, 19.6, 10)) + [19.6, 20.4] * 10))
    assert hover["edge_of_stability"] == "yes" and hover["above_2h"] == 10
    text = group_prose("vgg", LR, [creep, hover], None)
    assert "of which 0, 10 had lambda_0 >= 2/h" in text
    assert "1 of them never crossed 2/h there (lambda_0 below it at every diagnosis at the edge)." in text
    assert "never crossed" not in group_prose("vgg", LR, [hover], None)
    overall = summary_prose([creep, hover], []).split("\n\n")[-1]
    assert "hovered there (edge of stability) in 2 (1 of them without ever crossing 2/h);" in overall
    assert "without ever crossing" not in summary_prose([hover], [])


def test_a_run_with_fewer_than_three_diagnoses_is_a_no_not_a_crash():
    row = summary_row(
        "vgg", LR, _rows([10.0, 30.0])[:2] + [{"step": 20, "loss": 1e9, "outcome": "diverged at step 20"}]
    )
    assert row["outcome"] == "diverged at step 20" and row["reached_edge"] == "no"
    assert row["verdict"].startswith("no: 2 diagnosed steps")
    assert "h lambda_0 at initialisation: not diagnosed. No run reached the edge" in summary_prose([row], [])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"vgg_lrs": (0.1, -1.0)}, "--vgg-lrs must be finite and > 0, got -1.0"),
        ({"models": ()}, "--models needs at least one of: vgg, resnet"),
        ({"edge_at": 1.5}, r"--edge-at must be in \(0, 1\] \(a fraction of 2/h\), got 1.5"),
        ({"seeds": ()}, "--seeds needs at least one seed"),
        ({"edge_diagnoses": 0}, "--edge-diagnoses must be an integer >= 1"),
        ({"resnet_lrs": ()}, "--resnet-lrs needs at least one rate"),
        ({"steps": 50, "log_every": 20}, "fewer than 3 diagnoses at --log-every 20; raise --steps to at least 60"),
        ({"net": NetworkSetup(activation="relu")}, "--net.activation relu is not holomorphic"),
        ({"models": ("vgg", "mlp")}, "--models 'mlp' is not one of: vgg, resnet"),
        ({"net": NetworkSetup(n_train=0)}, "--net.n-train must be an integer >= 1"),
    ],
)
def test_bad_config_is_refused_in_one_line(changes, message):
    with pytest.raises(GDFlowsError, match=message) as err:
        EosConvConfig(**changes).validate()
    assert "\n" not in str(err.value)


def test_the_command_line_refuses_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eos-conv", "--out", str(tmp_path / "e"), "--steps", "10", "--log-every", "5"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "raise --steps" in err
    assert not (tmp_path / "e").exists()


def test_each_model_and_rate_is_one_full_batch_train_run():
    cfg = EosConvConfig(
        out="x", models=("vgg", "resnet"), vgg_lrs=(0.05, 0.1), resnet_lrs=(0.2,), seeds=(0, 3), steps=300, log_every=30
    )
    configs = train_configs(cfg)
    assert [(c.net.model, c.lr, c.net.seed, c.out.name) for c in configs] == [
        ("vgg", 0.05, 0, "vgg_lr0.05_s0"),
        ("vgg", 0.05, 3, "vgg_lr0.05_s3"),
        ("vgg", 0.1, 0, "vgg_lr0.1_s0"),
        ("vgg", 0.1, 3, "vgg_lr0.1_s3"),
        ("resnet", 0.2, 0, "resnet_lr0.2_s0"),
        ("resnet", 0.2, 3, "resnet_lr0.2_s3"),
    ]
    for c in configs:
        c.validate()
        assert c.batch_size == 0 and c.optimizer == "gd" and (c.steps, c.log_every, c.edge_every) == (300, 30, 2)
        assert (c.net.dataset, c.net.n_train, c.net.downsample, c.net.activation) == ("fashion_mnist", 1000, 2, "tanh")


def test_the_paper_plan_names_its_sizes_and_builds_its_nets_without_running(tmp_path):
    data = tmp_path / "fashion"
    make_idx_folder(data, np.random.default_rng(0), n_train=30, n_test=10)
    plan = scale_plan("paper", data)
    assert isinstance(plan, PaperScale) and scale_plan("paper").eos.net.data_dir is None
    sizes = plan.sizes()
    assert sizes["eos_n_train"] == 5000 and sizes["eos_image_side"] == 14 and sizes["eos_runs"] == 18
    assert sizes["eos_models"] == ("vgg", "resnet") and sizes["compare"] == "compare-optimizers --scale full"
    configs = train_configs(plan.eos_config(tmp_path / "run"))
    assert {c.net.n_train for c in configs} == {5000} and {c.net.data_dir for c in configs} == {data}
    data = load_dataset("fashion_mnist", data_dir=data, n_train=20, n_test=10)  # the plan's data folder
    data = downsample(data, configs[0].net.downsample)
    assert data.x_train.shape == (20, 14, 14, 1)
    for c in configs:  # the plan's nets traced on its image size (shapes only: nothing compiles or runs)
        net = c.net
        model = get_model(net.model, data.input_shape, 10, width=net.width, activation=net.activation, dtype=net.dtype)
        params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
        logits = jax.eval_shape(model.apply, params, jax.ShapeDtypeStruct((4, *data.input_shape), net.dtype))
        assert logits.shape == (4, 10) and logits.dtype == np.dtype(net.dtype) == np.float32


def test_paper_scale_md_reports_an_unfinished_eos_run_from_the_steps_it_reached(tmp_path):
    cfg = EosConvConfig(out=tmp_path / "eos_conv", vgg_lrs=(LR,), resnet_lrs=(LR,), seeds=(0,), steps=290, log_every=10)
    sub = Run.open(cfg.out, cfg.identity())
    for model, rows in (("vgg", _rows(RISE)), ("resnet", _rows(FLAT)[:20])):  # the ResNet run stopped at step 190
        (sub.path / run_name(model, LR, 0)).mkdir()
        Run(sub.path / run_name(model, LR, 0), {}).write_table("metrics", rows)
    text = paper_scale.markdown(tmp_path, device="Test GPU x 1")
    assert "**Not every run finished**: ResNet h = 0.1 seed 0 stopped before step 290" in text
    assert "| resnet | 0.1 | 0 | interrupted |" in text
    assert "Computed on **Test GPU x 1**" in text and "**Incomplete**" in text
    assert "in 1 of 2 runs" in text and "eos_conv/figures/sharpness.png" in text
    assert (sub.path / "figures" / "signs.png").is_file() and (sub.path / "summary.csv").is_file()
    assert "## DAL against the field at full size" in text and "`gdflows compare-optimizers --scale full`" in text
    assert json.loads((sub.path / "config.json").read_text())["net"]["n_train"] == 1000


def test_paper_scale_md_says_when_the_eos_run_logged_no_step(tmp_path):
    cfg = EosConvConfig(out=tmp_path / "eos_conv", vgg_lrs=(LR,), resnet_lrs=(LR,), seeds=(0,), steps=290, log_every=10)
    Run.open(cfg.out, cfg.identity())  # started, stopped before any run logged
    text = paper_scale.eos_section(tmp_path)
    assert "**Incomplete**" in text and text.endswith("No run logged a step.\n")
    assert not (cfg.out / "REPORT.md").exists()


def test_a_finished_sub_run_report_is_embedded_with_its_links_under_its_folder(tmp_path):
    sub = Run.open(tmp_path / paper_scale.COMPARE_FOLDER, {})
    sub.write_text("REPORT.md", "# compare\n\n## table\n\n![loss](figures/loss.png)\n")
    sub.finish()
    text = paper_scale.compare_section(tmp_path, ("compare-optimizers", "--quick"))
    assert "### compare" in text and "#### table" in text and "](compare_full/figures/loss.png)" in text


def test_the_command_line_of_a_stored_config_names_only_what_differs(tmp_path):
    assert flags(EosConvConfig()) == ""
    accelerator = EosConvConfig(size="accelerator", net=dataclasses.replace(EosConvConfig().net, data_dir=tmp_path))
    assert flags(accelerator) == " --size accelerator --net.data-dir DIR"
    custom = EosConvConfig(models=("vgg",), vgg_lrs=(0.1,), net=dataclasses.replace(EosConvConfig().net, n_train=40))
    assert flags(custom) == " --models vgg --vgg-lrs 0.1 --net.n-train 40"
    assert flags(EosConvConfig(size="accelerator").resolved()) == " --size accelerator"  # as stored in a run folder


def test_a_resumed_or_extended_run_adds_its_sessions_times(tmp_path):
    run = Run.open(tmp_path, {})
    add_time(run, "vgg_lr0.03_s0", 10.0, 15.0)
    add_time(run, "vgg_lr0.03_s1", 1.5, 2.0)
    add_time(run, "vgg_lr0.03_s0", 5.0, 7.0)
    times = {t["run"]: (float(t["wall_s"]), float(t["cpu_s"])) for t in run.read_table("timings")}
    assert times == {"vgg_lr0.03_s0": (15.0, 22.0), "vgg_lr0.03_s1": (1.5, 2.0)}
    assert cpu_text(run) == " Total: 0 CPU-minutes (0 minutes wall) over 2 runs (`timings.csv`)."


def test_an_interrupted_run_keeps_its_time(tmp_path, monkeypatch):
    run = Run.open(tmp_path, {})
    clock = iter([0.0, 4.0])
    monkeypatch.setattr(timings.time, "perf_counter", lambda: next(clock))
    with pytest.raises(KeyboardInterrupt), timings.timed(run, "resnet_lr0.021_s0"):
        raise KeyboardInterrupt
    assert [float(t["wall_s"]) for t in run.read_table("timings")] == [4.0]


def test_ctrl_c_writes_the_report_from_the_steps_reached(tmp_path, monkeypatch):
    """The VGG run finishes, Ctrl-C stops the ResNet run at step 190 (its train run raises what ``train`` does)."""
    net = NetworkSetup(dataset="mnist_subset", n_train=40, n_test=20)
    cfg = EosConvConfig(
        out=tmp_path / "e", vgg_lrs=(LR,), resnet_lrs=(LR,), seeds=(0,), steps=290, log_every=10, net=net
    )

    def fake_run(train):
        train.out.mkdir(parents=True)
        if train.net.model == "vgg":
            Run(train.out, {}).write_table("metrics", _rows(RISE))
            return
        Run(train.out, {}).write_table("metrics", [{**r, "outcome": ""} for r in _rows(FLAT)[:20]])
        raise RunInterrupted(f"interrupted: {train.out} holds the run up to step 190 of 290")

    monkeypatch.setattr(TrainConfig, "run", fake_run)
    with pytest.raises(RunInterrupted) as stop:
        eos_conv.run(cfg)
    assert str(stop.value) == (
        f"interrupted: {cfg.out / 'resnet_lr0.1_s0'} holds the run up to step 190 of 290; "
        f"{cfg.out / 'REPORT.md'} reports the steps reached so far"
    )
    summary = Run(cfg.out, {}).read_table("summary")
    assert [(r["model"], r["outcome"], r["logged"]) for r in summary] == [
        ("vgg", "completed", "30"),
        ("resnet", "interrupted", "20"),
    ]
    report = (cfg.out / "REPORT.md").read_text()
    assert "**Not every run finished**: ResNet h = 0.1 seed 0 stopped before step 290" in report
    # the loss rises on every other row: 15 one-step bursts in VGG's 30 rows, 10 in ResNet's 20, each caught
    events = {r["model"]: r for r in Run(cfg.out, {}).read_table("bursts")}
    assert [(events[m]["bursts"], events[m]["whole"]) for m in ("vgg", "resnet")] == [("15", "15"), ("10", "10")]
    assert "the 25 rise steps came in 25 bursts" in report
    # dE/dt is the change, not the change / h: 0.1 against 1, a 90% error at every step
    errors = {r["model"]: r for r in Run(cfg.out, {}).read_table("step_errors") if r["predictor"] == "PF dE/dt"}
    assert [float(errors[m]["median_all"]) for m in ("vgg", "resnet")] == pytest.approx([0.9, 0.9])
    assert "| vgg | 0.1 | PF dE/dt | 30 (15) | 90% [90%, 90%] | 90% [90%, 90%] | 90% |" in report
    assert not (cfg.out / ".complete").exists()


def test_the_sign_figure_shows_rise_recall_only_where_a_loss_rose(tmp_path):
    """signs.png's right panel: a bar per predictor where the pooled steps hold a rise, a gap (and "no rise")
    where none did; the left panel: every accuracy."""
    import matplotlib.pyplot as plt

    def row(lr, name, recall):
        values = {"accuracy": 0.9, "rise_recall": recall}
        ends = (("", 0.0), ("_low", -0.1), ("_high", 0.05))
        return {"model": "vgg", "lr": lr, "predictor": name} | {
            f"{k}{end}": v + d for k, v in values.items() for end, d in ends
        }

    names = ["PF dE/dt", "gradient flow (always down)"]
    pooled = [row(0.1, n, np.nan) for n in names] + [row(0.2, n, r) for n, r in zip(names, (0.8, 0.0))]
    groups = [("vgg", 0.1), ("vgg", 0.2)]
    fig, (left, right) = plt.subplots(1, 2)
    eos_conv._score_bars(left, pooled, groups, names, "accuracy")
    eos_conv._score_bars(right, pooled, groups, names, "rise_recall")
    assert len(left.patches) == 4 and len(right.patches) == 2  # no bar where no step rose
    assert sorted(p.get_height() for p in right.patches) == [0.0, 0.8]
    plt.close(fig)
    for p in pooled:
        p["beats_baselines"] = Verdict("no", "")
    assert eos_conv.sign_figure(tmp_path / "signs.png", pooled).is_file()
