"""`gdflows central`: the measures and verdict rules on synthetic inputs, and a scaled-down run against GD."""

import math

import jax
import numpy as np
import pytest

import gdflows
from gdflows.central_solver import solve_central
from gdflows.errors import GDFlowsError
from gdflows.experiments import central as exp
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.flows import central
from gdflows.status import Status


def test_centred_average_is_exact_on_lines_and_damps_a_period_two_oscillation_by_one_over_the_window():
    n = np.arange(20.0)
    avg = exp.centred_average(3 * n + 1, 5)
    assert np.all(np.isnan(avg[:2])) and np.all(np.isnan(avg[-2:]))
    np.testing.assert_allclose(avg[2:-2], 3 * n[2:-2] + 1, rtol=1e-14)
    wiggle = exp.centred_average((-1.0) ** n, 7)
    np.testing.assert_allclose(np.abs(wiggle[3:-3]), 1 / 7, rtol=1e-14)
    rows = exp.centred_average(np.stack([n, -n], axis=1), 3)
    np.testing.assert_allclose(rows[1:-1], np.stack([n, -n], axis=1)[1:-1], rtol=1e-14)
    with pytest.raises(ValueError, match="odd"):
        exp.centred_average(n, 4)


def test_onset_is_the_first_rise_and_at_eos_marks_rises_in_the_window():
    losses = np.array([5.0, 4.0, 3.0, 2.0, 2.5, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0])
    assert exp.eos_onset(losses) == 3
    assert exp.eos_onset(np.linspace(2, 1, 9)) is None
    np.testing.assert_array_equal(
        exp.at_eos(losses, 3), [False, False, True, True, True, False, False, False, False, False, False]
    )
    assert exp.at_eos(losses, 1).sum() == 1


def test_a_rise_below_the_noise_threshold_is_not_a_rise():
    losses = np.float32([0.25, 0.25, np.nextafter(np.float32(0.25), np.float32(1)), 0.2499, 0.26])
    np.testing.assert_array_equal(exp.rises(losses), [False, True, False, True])
    np.testing.assert_array_equal(exp.rises(losses, 1e-6), [False, False, False, True])


def test_burst_starts_separate_rises_by_quiet_stretches():
    up = np.zeros(100, bool)
    up[[10, 12, 14, 50, 52, 90]] = True
    losses = np.concatenate([[0.0], np.cumsum(np.where(up, 1.0, -1.0))])
    np.testing.assert_array_equal(exp.burst_starts(losses, quiet=20), [10, 50, 90])
    assert exp.burst_starts(np.linspace(1, 0, 5)).size == 0


def test_loss_tracking_counts_steps_within_five_percent_from_the_start():
    pred = np.full(10, 2.0)
    avg = pred * (1 + np.array([0.5, 0.5, 0.0, 0.01, -0.04, 0.049, 0.06, -0.2, np.nan, 0.0]))
    out = exp.loss_tracking(avg, pred, 2)
    assert out["steps"] == 7 and out["fraction"] == pytest.approx(5 / 7)
    assert out["largest"] == pytest.approx(0.2) and out["median"] == pytest.approx(0.04)
    assert math.isnan(exp.loss_tracking(avg, pred, None)["fraction"])


def test_sharpness_hold_distance_ratio_and_edge_count():
    lam = np.array([10.0, 19.0, 20.1, 19.9, 25.0])
    assert exp.sharpness_hold(lam, 0.1, [False, False, True, True, False]) == pytest.approx(0.005)
    assert math.isnan(exp.sharpness_hold(lam, 0.1, np.zeros(5, bool)))
    avg = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, np.nan]])
    cf, gf = np.array([[0, 0], [1.0, 2.0], [9, 9]]), np.array([[0, 0], [4.0, 5.0], [9, 9]])
    assert exp.distance_ratio(avg, cf, gf) == pytest.approx((1.0, 5.0, 0.2, 1))
    assert exp.distance_ratio(avg, np.full((3, 2), np.nan), gf)[2] == float("inf")  # a diverged flow fails
    assert exp.distance_ratio(np.full((3, 2), np.nan), cf, gf)[3] is None
    eigs = np.array([[19.0, 5.0], [19.9, 19.81], [20.0, 19.79]])
    np.testing.assert_array_equal(exp.edge_count(eigs, 0.1), [0, 2, 1])


def test_slowdown_compares_time_per_step_with_two_and_one_eigenvalues_at_the_edge():
    rows = [
        {"steps": 100, "seconds": 50.0, "hvps": 1000, "at_edge": 0},  # compiles: left out
        {"steps": 100, "seconds": 2.0, "hvps": 3000, "at_edge": 1},
        {"steps": 50, "seconds": 1.0, "hvps": 1500, "at_edge": 1},
        {"steps": 100, "seconds": 6.0, "hvps": 6000, "at_edge": 2},
    ]
    out = exp.slowdown(rows)
    assert out["seconds_one"] == pytest.approx(0.02) and out["seconds_two"] == pytest.approx(0.06)
    assert out["ratio"] == pytest.approx(3.0) and out["hvps_two"] == pytest.approx(60.0)
    assert math.isnan(exp.slowdown(rows[:3])["ratio"])


@pytest.mark.parametrize(
    ("values", "answers"),
    [
        ({"loss_fraction": 0.95, "hold": 1e-6, "distance_ratio": 0.1, "slowdown": 1.5}, ["yes"] * 4),
        ({"loss_fraction": 0.5, "hold": 0.02, "distance_ratio": 0.9, "slowdown": 12.0}, ["no"] * 4),
        (
            {"loss_fraction": 0.9, "hold": float("nan"), "distance_ratio": 0.3, "slowdown": float("nan")},
            ["yes", "inconclusive: not measured", "yes", "inconclusive: not measured"],
        ),
    ],
)
def test_claims_say_yes_no_and_not_measured_from_the_numbers(values, answers):
    assert [row["verdict"] for row in exp.claims(values)] == answers
    rmsprop = exp.claims(values, exp.NAMES["rmsprop"])
    assert [row["verdict"] for row in rmsprop] == answers
    assert "time-averaged RMSProp" in rmsprop[0]["claim"] and "preconditioned lambda_0" in rmsprop[1]["claim"]
    assert "RMSProp's stable flow" in rmsprop[2]["claim"] and "GD" not in " ".join(r["claim"] for r in rmsprop)


def test_config_refuses_bad_settings_before_any_work(tmp_path):
    with pytest.raises(GDFlowsError, match="odd"):
        exp.CentralConfig(out=tmp_path, window=10).validate()
    with pytest.raises(GDFlowsError, match="steps"):
        exp.CentralConfig(out=tmp_path, steps=100, window=301).validate()
    with pytest.raises(GDFlowsError, match="--decay"):
        exp.CentralConfig(out=tmp_path, optimizer="rmsprop", decay=1.0).validate()
    with pytest.raises(GDFlowsError, match="--optimizer 'adam' is not one of"):
        exp.CentralConfig(out=tmp_path, optimizer="adam").validate()
    with pytest.raises(GDFlowsError, match="--lr must be finite and > 0"):
        exp.CentralConfig(out=tmp_path, lr=-1.0).validate()
    assert not (tmp_path / "config.json").exists()


def test_scaled_down_central_flow_tracks_time_averaged_gd():
    """A tanh MLP with D = 46 on 64 MNIST images (4x4 pooled) at h = 0.38 (h lambda_0 = 1.86 at the start):
    GD's loss first rises at step ~90 and it settles into a period-two oscillation; the central flow tracks
    its time average, gradient flow does not."""
    prob = NetworkSetup(n_train=64, classes=(0, 1, 2, 3), downsample=7, depth=1, width=2).build()
    lr, steps, window = 0.38, 300, 41
    gd_thetas = np.asarray(gdflows.gd(prob.loss, prob.theta0, lr, steps))
    gd_losses = np.asarray(jax.vmap(prob.loss)(gd_thetas))
    gf = np.asarray(gdflows.gd(prob.loss, prob.theta0, lr / 20, 20 * steps))[::20]  # gradient flow to O(h/20)
    sol = solve_central(central(prob.loss, lr, k=3), prob.theta0, steps, chunk=steps + 1)
    assert sol.status is Status.OK
    onset = exp.eos_onset(gd_losses)
    assert 50 < onset < 150
    tracking = exp.loss_tracking(exp.centred_average(gd_losses, window), sol.prediction, onset)
    assert tracking["fraction"] >= 0.9
    assert exp.sharpness_hold(sol.eigenvalues[:, 0], lr, exp.at_eos(gd_losses, window)) < 1e-3
    d_cf, d_gf, ratio, _ = exp.distance_ratio(exp.centred_average(gd_thetas, window), sol.thetas, gf)
    assert ratio < 0.3
