"""gdflows train: rows against a dense Hessian, divergence as an outcome with its report, the EoS verdicts,
and a run killed with SIGKILL that resumes to the uninterrupted metrics."""

import dataclasses
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import gdflows
from gdflows.curvature.preconditioned import adam_preconditioner, rmsprop_preconditioner
from gdflows.experiments.cli import main
from gdflows.experiments.eos import eos_verdicts, verdict_prose
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.report.runs import Run, read_csv
from gdflows.experiments.train import TrainConfig, log_steps, train
from gdflows.stability import stability_coefficients

TINY = NetworkSetup(n_train=50, n_test=20, downsample=7, width=8)  # 4x4 images, 298 parameters: Lanczos
DENSE = dataclasses.replace(TINY, width=6)  # 214 parameters: dense eigenpairs (compiled in a fraction of the time)
DENSE_FLAGS = ["--net.n-train", "50", "--net.n-test", "20", "--net.downsample", "7", "--net.width", "6"]


def _start(net):
    problem = net.build()
    lam0 = np.linalg.eigvalsh(np.asarray(jax.hessian(problem.loss)(problem.theta0)))[-1]
    return problem, 1.5 / lam0  # h lambda_0 = 1.5 at the start: c_0 flips sign every step


@pytest.fixture(scope="module")
def tiny():
    return _start(TINY)


@pytest.fixture(scope="module")
def dense():
    return _start(DENSE)


def _dense(loss, theta):
    lam, U = np.linalg.eigh(np.asarray(jax.hessian(loss)(theta)))
    return lam[::-1], U[:, ::-1], np.asarray(jax.grad(loss)(theta))


def test_rows_match_a_dense_hessian(tiny, tmp_path):
    problem, lr = tiny
    cfg = TrainConfig(out=tmp_path, net=TINY, lr=lr, steps=12, log_every=3, k=2, tol=1e-10)
    run = Run.open(tmp_path, cfg)
    rows = train(problem, cfg, run)
    assert [r["step"] for r in rows] == [0, 3, 6, 9, 12] and rows[-1]["outcome"] == "completed"
    thetas = gdflows.gd(problem.loss, problem.theta0, lr, cfg.steps)
    for r in (rows[0], rows[-1]):
        theta = thetas[r["step"]]
        lam, U, g = _dense(problem.loss, theta)
        u0 = U[:, 0] * np.sign(U[:, 0] @ g) * np.sign(r["c_0"])  # the row's orientation
        np.testing.assert_allclose([r["lambda_0"], r["lambda_1"]], lam[:2], rtol=1e-8)
        np.testing.assert_allclose(r["c_0"], u0 @ g, rtol=1e-6)
        np.testing.assert_allclose(
            r["dE_dt"], np.real(np.sum(stability_coefficients(lam, lr) * (U.T @ g) ** 2)), rtol=1e-6
        )
        nxt = theta - lr * g
        np.testing.assert_allclose(r["loss_next"], problem.loss(nxt), rtol=1e-12)
        np.testing.assert_allclose(r["observed_dE_dt"], (problem.loss(nxt) - problem.loss(theta)) / lr, rtol=1e-9)
        np.testing.assert_allclose(r["c_0_next"], u0 @ np.asarray(jax.grad(problem.loss)(nxt)), rtol=1e-6, atol=1e-12)
    assert rows[0]["c_0"] > 0 and rows[0]["c_0"] * rows[0]["c_0_next"] < 0  # h lambda_0 = 1.5 flips c_0


def test_a_diverging_cli_run_ends_with_its_report_and_figures(dense, tmp_path):
    problem, lr = dense
    lr = float(40 * lr)
    flags = [*DENSE_FLAGS, "--k", "1", "--lr", repr(lr), "--steps", "400", "--log-every", "100"]
    main(["train", *flags, "--out", str(tmp_path)])
    thetas = gdflows.gd(problem.loss, problem.theta0, lr, 400)
    losses = np.array([problem.loss(t) for t in thetas])
    first = int(np.flatnonzero(~(losses <= 1e6 * losses[0]))[0])  # diverged: above 1e6 x the start, or not finite
    assert np.isfinite(losses[first])  # the bound, not an overflow, stops it
    rows = read_csv(tmp_path / "metrics.csv")
    assert rows[-1]["outcome"] == f"diverged at step {first}" and int(rows[-1]["step"]) == first
    report = (tmp_path / "REPORT.md").read_text()
    assert f"Outcome: **diverged at step {first}**" in report and "do not model this run's steps" not in report
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "c0.png",
        "loss.png",
        "sc0.png",
        "sharpness.png",
    ]


def _rows(lam, loss, loss_next, dE, lr=0.1):
    return [
        {
            "step": 10 * i,
            "two_over_h": 2 / lr,
            "lambda_0": lam_i,
            "loss": e,
            "loss_next": en,
            "dE_dt": d,
            "c_0": 1.0,
            "c_0_next": -1.0 if lam_i > 2 / lr else 1.0,
        }  # made-up flips: above 2/h
        for i, (lam_i, e, en, d) in enumerate(zip(lam, loss, loss_next, dE))
    ]


def test_eos_verdicts_on_hand_made_rows():
    # 2/h = 20; steps 0..80, the last third is steps >= 53.3 (rows 6, 7, 8).
    lam = [10, 14, 18, 21, 19, 20, 21.9, 18.1, 20.5]
    loss = [1.0] * 9
    loss_next = [0.9, 0.8, 1.0 + 1e-7, 1.1, 0.95, 0.9, 0.9, 0.9, 1.2]  # row 2 is below noise (1e-6)
    dE = [-1, -1, +1, +1, -1, -1, -1, +1, +1]  # disagrees on row 7 only
    v = eos_verdicts(_rows(lam, loss, loss_next, dE))
    assert v["edge_of_stability"] and v["rose_from_below"] and v["hovers"]
    assert v["max_deviation_last_third"] == pytest.approx(0.095)
    assert v["steps_above_noise"] == 8 and v["sign_agreement"] == pytest.approx(7 / 8) and not v["signs_agree"]
    assert v["c0_flip_fraction"] == pytest.approx(2 / 3)
    lam[7] = 17.9  # leaves the 10% band
    assert not eos_verdicts(_rows(lam, loss, loss_next, dE))["hovers"]


def test_eos_verdicts_judge_the_optimizers_own_sharpness_against_its_threshold():
    """Rows whose lambda_0 never nears 2/h but whose matched sharpness rises to its threshold (Adam's 38/h)."""
    lam = [10, 14, 18, 21, 19, 20, 21.9, 18.1, 20.5]  # hovers at 20 = the threshold below
    rows = _rows([1.0] * 9, [1.0] * 9, [0.9] * 9, [-1] * 9)
    for r, s in zip(rows, lam):
        r |= {"sharpness": s, "sharpness_name": "the sharpness", "threshold": 20.0, "threshold_name": "38/h"}
    v = eos_verdicts(rows)
    assert v["edge_of_stability"] and v["threshold_name"] == "38/h"
    assert v["max_deviation_last_third"] == pytest.approx(0.095)
    assert "the sharpness rose to 38/h and hovers there" in verdict_prose(v)
    assert not eos_verdicts(_rows([1.0] * 9, [1.0] * 9, [0.9] * 9, [-1] * 9))["edge_of_stability"]  # lambda_0


OPTAX = {"adam": optax.adam, "rmsprop": optax.rmsprop, "momentum": lambda lr: optax.sgd(lr, momentum=0.9)}
PRECONDITIONER = {"adam": adam_preconditioner, "rmsprop": rmsprop_preconditioner}


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "momentum"])
def test_train_logs_the_sharpness_that_matches_the_optimizer(dense, tmp_path, optimizer):
    problem, _ = dense  # the Lanczos path of the preconditioned sharpness: tests/test_preconditioned.py
    lr = 0.01
    cfg = TrainConfig(out=tmp_path, net=DENSE, lr=lr, steps=4, log_every=2, k=1, tol=1e-10, optimizer=optimizer)
    rows = train(problem, cfg, Run.open(tmp_path, cfg))
    opt = OPTAX[optimizer](lr)
    theta, state = problem.theta0, opt.init(problem.theta0)
    for _ in range(4):  # the same full-batch steps, independently
        updates, state = opt.update(jax.grad(problem.loss)(theta), state, theta)
        theta = optax.apply_updates(theta, updates)
    H = np.asarray(jax.hessian(problem.loss)(theta))
    if optimizer in PRECONDITIONER:
        assert np.isnan(rows[0]["sharpness"])  # no second moment before the first step
        d = 1 / np.sqrt(np.asarray(PRECONDITIONER[optimizer](state)))
        H = d[:, None] * H * d[None, :]
    assert rows[-1]["sharpness"] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-6)
    assert rows[-1]["threshold"] == pytest.approx({"adam": 38.0, "rmsprop": 2.0, "momentum": 3.8}[optimizer] / lr)


def test_the_cli_judges_adam_against_38_over_h_and_says_so(tmp_path):
    argv = ["train", "--optimizer", "adam", "--lr", "0.01", "--steps", "6", "--log-every", "2", "--k", "1"]
    argv += DENSE_FLAGS
    main([*argv, "--out", str(tmp_path / "adam")])
    report = (tmp_path / "adam" / "REPORT.md").read_text()
    assert "Ratios are Adam's preconditioned sharpness lambda_max(P^-1/2 H P^-1/2) over its threshold" in report
    assert "(2 + 2 beta_1)/((1 - beta_1) h) = 38/h (not GD's 2/h)" in report
    assert "Ratios are lambda_0 / (2/lr)" not in report
    assert "they do not model this run's steps (adam's update)" in report
    rows = read_csv(tmp_path / "adam" / "metrics.csv")
    assert all(float(r["threshold"]) == pytest.approx(3800.0) for r in rows)


# A CPU-sized run that reaches the edge of stability: tanh MLP, 500 MNIST images at 7x7, diagnosed every 4 steps
# (101 rows: at every 8, the PF was right alone on 6 of 7 steps where it and gradient flow differ, p = 0.0625,
# too few for the paired sign rule to say anything).
SMALL = [
    "train",
    "--net.n-train",
    "500",
    "--net.downsample",
    "4",
    "--net.width",
    "32",
    "--lr",
    "0.2",
    "--steps",
    "400",
    "--log-every",
    "4",
]


# Runs the command line and kills it with SIGKILL at a fixed point, so a failure replays from the test alone:
# argv[1:3] = "checkpoint" N, right after the checkpoint of step N is written (one logged step ahead of metrics.csv),
# or "metrics" N, right after metrics.csv is written with the row of step N (before the next checkpoint).
KILLED_AT = """
import os, signal, sys
from gdflows.experiments.cli import main
from gdflows.experiments.report.runs import Run
what, at = sys.argv[1], int(sys.argv[2])
save_checkpoint, write_table = Run.save_checkpoint, Run.write_table
def checkpoint_then_die(self, step, *args, **kwargs):
    path = save_checkpoint(self, step, *args, **kwargs)
    if what == "checkpoint" and step == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return path
def table_then_die(self, name, rows):
    path = write_table(self, name, rows)
    if what == "metrics" and name == "metrics" and int(rows[-1]["step"]) == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return path
Run.save_checkpoint, Run.write_table = checkpoint_then_die, table_then_die
main(sys.argv[3:])
"""


def _cli(out, env, kill=("never", -1)):
    return subprocess.Popen(
        [sys.executable, "-c", KILLED_AT, kill[0], str(kill[1]), *SMALL, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The uninterrupted run; its compiled programs go to a cache the resumed runs reuse."""
    root = tmp_path_factory.mktemp("small")
    env = os.environ | {
        "GDFLOWS_QUIET": "1",
        "JAX_COMPILATION_CACHE_DIR": str(root / "xla"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    proc = _cli(root / "full", env)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
    return root, env


def test_small_run_reaches_the_edge_and_the_pf_predicts_the_sign(small_run):
    root, _ = small_run
    v = eos_verdicts(read_csv(root / "full" / "metrics.csv"))
    assert v["edge_of_stability"], v
    pf = next(r for r in v["predictors"] if r["predictor"] == "PF dE/dt")
    assert pf["versus"]["gradient flow (always down)"].holds and pf["versus"]["majority sign"].holds, pf
    assert v["steps_above_noise"] >= 30, v
    assert len(list((root / "full" / "figures").glob("*.png"))) == 4


def _checkpoint_step(out):
    with np.load(out / "checkpoint.npz") as data:
        return int(data["__step__"])


def test_sigkill_then_rerun_gives_identical_metrics(small_run):
    # Killed after the checkpoint of step 200 (its row not yet written), resumed and killed again after the row
    # of the last step (400) is written but before the run is marked completed; the third run finishes it.
    root, env = small_run
    out = root / "killed"
    for kill, last_row in ((("checkpoint", 200), 196), (("metrics", 400), 400)):
        proc = _cli(out, env, kill)
        assert proc.wait(timeout=600) == -signal.SIGKILL, proc.stderr.read().decode()
        rows = read_csv(out / "metrics.csv")
        assert _checkpoint_step(out) == kill[1] and int(rows[-1]["step"]) == last_row and not rows[-1]["outcome"]
    rerun = _cli(out, env)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()
    assert (out / "metrics.csv").read_bytes() == (root / "full" / "metrics.csv").read_bytes()


def test_the_log_schedule_turns_dense_once_a_diagnosis_reaches_the_edge_and_resumes_from_the_rows():
    cfg = TrainConfig(lr=0.1, steps=100, log_every=20, edge_every=5)  # the edge: lambda_0 >= 0.98 x 20 = 19.6
    rows = []
    schedule = log_steps(cfg, 0, rows)
    seen = []
    for step in schedule:  # the run appends a row after each logged step; lambda_0 reaches 19.7 at step 40
        seen.append(step)
        rows.append({"step": step, "lambda_0": 19.7 if step >= 40 else 19.5, "two_over_h": 20.0})
    assert seen == [0, 20, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]
    assert list(log_steps(cfg, 47, rows[:4])) == [50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]  # resumed at 47
    assert list(log_steps(dataclasses.replace(cfg, edge_every=0), 0, rows)) == [0, 20, 40, 60, 80, 100]
    # ending after 3 diagnoses at the edge: 40, 45, 50 (no last step: the run ends at 50)
    assert list(log_steps(dataclasses.replace(cfg, edge_diagnoses=3), 0, rows)) == [0, 20, 40, 45, 50]


def test_a_run_ended_by_its_edge_diagnoses_or_a_divergence_ended_before_any_budget():
    from gdflows.experiments.train import ended_early, run_outcome

    cfg = TrainConfig(lr=0.1, steps=100, log_every=20, edge_every=5, edge_diagnoses=3)
    edge = [
        {"step": str(s), "lambda_0": "19.7" if s >= 40 else "19.5", "two_over_h": "20.0", "outcome": ""}
        for s in (0, 20, 40, 45, 50)
    ]
    done = [*edge[:-1], edge[-1] | {"outcome": "completed"}]
    assert ended_early(done, cfg)  # 3 diagnoses at the edge: any budget ends here
    short = done[:-2] + [done[-2] | {"step": "45", "outcome": "completed"}]
    assert not ended_early(short, cfg)  # 2 at the edge: the budget ended it
    assert not ended_early(done, dataclasses.replace(cfg, edge_diagnoses=0))  # no edge rule: the budget ended it
    assert not ended_early(edge, cfg)  # unfinished (interrupted): not ended
    assert ended_early([*edge[:2], {"step": "30", "loss": "inf", "outcome": "diverged at step 30"}], cfg)
    assert not ended_early([], cfg)
    # the outcome under a budget: a run that completed a smaller one is unfinished until it is extended
    assert run_outcome(done, cfg) == "completed" and run_outcome(edge, cfg) == "interrupted"
    assert run_outcome(short, cfg) == "interrupted"
    assert run_outcome(short, dataclasses.replace(cfg, steps=45)) == "completed"
    assert run_outcome([edge[0], {"step": "7", "outcome": "diverged at step 7"}], cfg) == "diverged at step 7"


def test_minibatch_sgd_logs_its_batch_sharpness_against_2_over_h(dense, tmp_path):
    """Rows of minibatch SGD hold E_B[g_B^T H_B g_B / |g_B|^2] over 16 batches drawn as the row's seed says,
    checked against each batch's dense Hessian."""
    from gdflows.experiments.train import BATCHES

    problem, _ = dense
    lr, size = 0.05, 10
    cfg = TrainConfig(out=tmp_path, net=DENSE, lr=lr, steps=4, log_every=2, k=1, tol=1e-10, batch_size=size)
    rows = train(problem, cfg, Run.open(tmp_path, cfg))
    theta = problem.theta0  # the row of step 0
    rng = np.random.default_rng((DENSE.seed, 0))
    x, y = problem.train_xy
    ratios = []
    for _ in range(BATCHES):
        i = rng.choice(len(problem.data.y_train), size, replace=False)
        loss = lambda t, i=i: problem.batch_loss(t, x[i], y[i])  # noqa: E731
        g, H = np.asarray(jax.grad(loss)(theta)), np.asarray(jax.hessian(loss)(theta))
        ratios.append(g @ H @ g / (g @ g))
    assert rows[0]["sharpness"] == pytest.approx(np.mean(ratios), rel=1e-9)
    assert rows[0]["sharpness_sem"] == pytest.approx(np.std(ratios, ddof=1) / np.sqrt(BATCHES), rel=1e-6)
    assert rows[0]["threshold"] == pytest.approx(2 / lr) and rows[0]["threshold_name"] == "2/h"
    assert all(np.isfinite(r["sharpness"]) for r in rows)
