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
from gdflows.experiments import paper_scale
from gdflows.experiments.cli import main
from gdflows.experiments.configs import EosConvConfig, NetworkSetup
from gdflows.experiments.eos_conv import flags, run_name, summary_prose, summary_row, train_configs
from gdflows.experiments.paper_scale import PaperScale
from gdflows.experiments.report.runs import Run
from gdflows.experiments.reproduce import scale_plan
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
    assert rise["reached_edge"] == "yes" and rise["first_at_edge"] == 80  # linspace: 18.9 at row 8
    assert rise["hl0_start"] == pytest.approx(1.0) and rise["hl0_end"] == pytest.approx(2.0)
    assert rise["verdict"] == "yes" and rise["edge_of_stability"]
    # Re(sc_0) over the last third: rows with step >= 2/3 of 290, i.e. i = 20..29, mean 0.01 * 24.5
    assert rise["re_sc0_last_third"] == pytest.approx(0.245)
    assert rise["sign_agreement"] == 1.0 and rise["majority_baseline"] == 0.5 and rise["sign"] == "yes"
    assert flat["reached_edge"] == "no" and flat["first_at_edge"] == "" and not flat["edge_of_stability"]
    assert flat["verdict"].startswith("partly: edge no, sign yes")
    prose = summary_prose([rise, flat])
    vgg, resnet, overall = prose.split("\n\n")
    assert "first reached the edge (h lambda_0 >= 1.8) at step 80" in vgg and "Verdict: **yes**" in vgg
    assert (
        "never reached the edge (h lambda_0 >= 1.8" in resnet
        and "did not rise to 2/h" in resnet
        and "first reached" not in resnet
    )
    assert "reached the edge (lambda_0 >= 0.9 x 2/h) in 1 of 2 runs" in overall and "in 1;" in overall
    assert "the majority sign) in 2 of 2" in overall
    lazy = summary_row("vgg", LR, _rows(FLAT, sign_right=False))  # always "down": right half the time
    # it is gradient flow itself: 30 identical steps cannot exclude a 10-point gain, so inconclusive
    assert lazy["verdict"] == "no: edge no, sign inconclusive" and lazy["sign"] == "inconclusive"
    assert "the majority sign) in 0 of 1" in summary_prose([lazy])


def test_a_run_with_fewer_than_three_diagnoses_is_a_no_not_a_crash():
    row = summary_row(
        "vgg", LR, _rows([10.0, 30.0])[:2] + [{"step": 20, "loss": 1e9, "outcome": "diverged at step 20"}]
    )
    assert row["outcome"] == "diverged at step 20" and row["reached_edge"] == "no"
    assert row["verdict"].startswith("no: 2 diagnosed steps")
    assert "Verdict: **no: 2 diagnosed steps" in summary_prose([row])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"vgg_lrs": (0.1, -1.0)}, "--vgg-lrs must be finite and > 0, got -1.0"),
        ({"models": ()}, "--models needs at least one of: vgg, resnet"),
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
    cfg = EosConvConfig(out="x", vgg_lrs=(0.05, 0.1), resnet_lrs=(0.2,), steps=300, log_every=30)
    configs = train_configs(cfg)
    assert [(c.net.model, c.lr, c.out.name) for c in configs] == [
        ("vgg", 0.05, "vgg_lr0.05"),
        ("vgg", 0.1, "vgg_lr0.1"),
        ("resnet", 0.2, "resnet_lr0.2"),
    ]
    for c in configs:
        c.validate()
        assert c.batch_size == 0 and c.optimizer == "gd" and (c.steps, c.log_every) == (300, 30)
        assert (c.net.dataset, c.net.n_train, c.net.downsample, c.net.activation) == ("fashion_mnist", 1000, 2, "tanh")


def test_the_paper_plan_names_its_sizes_and_builds_its_nets_without_running(tmp_path):
    data = tmp_path / "fashion"
    make_idx_folder(data, np.random.default_rng(0), n_train=30, n_test=10)
    plan = scale_plan("paper", data)
    assert isinstance(plan, PaperScale) and scale_plan("paper").eos.net.data_dir is None
    sizes = plan.sizes()
    assert sizes["eos_n_train"] == 5000 and sizes["eos_image_side"] == 14 and sizes["eos_runs"] == 4
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
        assert logits.shape == (4, 10) and logits.dtype == np.float64


def test_paper_scale_md_reports_an_unfinished_eos_run_from_the_steps_it_reached(tmp_path):
    cfg = EosConvConfig(out=tmp_path / "eos_conv", vgg_lrs=(LR,), resnet_lrs=(LR,), steps=290, log_every=10)
    sub = Run.open(cfg.out, cfg.identity())
    for model, rows in (("vgg", _rows(RISE)), ("resnet", _rows(FLAT)[:20])):  # the ResNet run stopped at step 190
        (sub.path / run_name(model, LR)).mkdir()
        Run(sub.path / run_name(model, LR), {}).write_table("metrics", rows)
    text = paper_scale.markdown(tmp_path, device="Test GPU x 1")
    assert "**Not every run finished**: ResNet h = 0.1 stopped before step 290" in text
    assert "| resnet | 0.1 | interrupted |" in text
    assert "Computed on **Test GPU x 1**" in text and "**Incomplete**" in text
    assert "in 1 of 2 runs" in text and "eos_conv/figures/sharpness.png" in text
    assert (sub.path / "figures" / "signs.png").is_file() and (sub.path / "summary.csv").is_file()
    assert "## DAL against the field at full size" in text and "`gdflows compare-optimizers --scale full`" in text
    assert json.loads((sub.path / "config.json").read_text())["net"]["n_train"] == 1000


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
