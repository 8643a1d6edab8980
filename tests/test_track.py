"""`gdflows track` pieces: flows from GD iterates, ranking, labels by whether GD oscillates, the central flow."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.experiments.flow_comparison import quadratic_model
from gdflows.experiments.report.runs import Run
from gdflows.experiments.track import (
    AVERAGED,
    _resume,
    averaged_ratio,
    central_deviation,
    holding_table,
    period_two_average,
    phase,
    relative_rows,
    summarize,
    track_start,
)
from gdflows.problems.quadratic import Quadratic


def test_track_start_on_a_quadratic_pf_is_exact_and_ranked_first():
    loss = Quadratic(jnp.diag(jnp.array([3.0, 1.0, 0.2])), jnp.array([0.1, -0.2, 0.3]))
    lr = 0.7  # h*lambda = 2.1 (GD oscillates out along u_0), 0.7, 0.14
    thetas = np.asarray(gdflows.gd(loss, jnp.array([1.0, -1.0, 0.5]), lr, 8))
    dist, sharp = track_start(loss, thetas, lr, 2, 5, ("NGF", "IGR", "PF"), 1e-8, rtol=1e-12, atol=1e-14)
    assert abs(sharp[0]["gd_h_lambda0"] - 2.1) < 1e-9
    assert {r["phase"] for r in dist} == {"at EoS"}
    summary = summarize(dist)
    assert [r["flow"] for r in summary] == ["PF", "IGR", "NGF"]
    assert summary[0]["one_step_error"] < 1e-10 and summary[-1]["one_step_error"] > 1e-3


def test_summarize_puts_failed_solves_last():
    rows = [
        {"start": 0, "phase": "p", "h_lambda0": 2.0, "flow": f, "n": n, "distance": d, "status": "ok"}
        for f, d in [("A", float("nan")), ("B", 0.5), ("C", 0.1)]
        for n in (0, 1)
    ]
    assert [r["flow"] for r in summarize(rows)] == ["C", "B", "A"]


def test_central_deviation_ignores_the_start():
    rows = [{"start": 5, "n": n, "gd_h_lambda0": 2.1, "central_h_lambda0": v} for n, v in enumerate([2.2, 2.01, 1.99])]
    assert abs(central_deviation(rows, 5) - 0.005) < 1e-12


def test_phase_is_decided_by_whether_gd_oscillates():
    assert phase(True, 1.5) == "at EoS"
    assert phase(False, 2.08) == "above 2/h, not oscillating"
    assert phase(False, 1.5) == "before EoS"


def test_central_flow_from_a_start_above_2_over_h_does_not_jump():
    """E = y x^2 / 2 - c y from y = 2.08/h, x tiny: GD has not begun to oscillate (its loss falls), the
    central flow keeps lambda_0 at its start value: it departs from GD by the sharpening c h GD makes in one
    step, not by a projection of lambda_0 onto 2/h (0.08/h here)."""
    c, h = 0.05, 1.0

    def loss(theta):
        return 0.5 * theta[1] * theta[0] ** 2 - c * theta[1]

    thetas = np.asarray(gdflows.gd(loss, jnp.array([1e-4, 2.08 / h]), h, 12))
    dist, sharp = track_start(loss, thetas, h, 1, 5, ("central",), 1e-8)
    assert {r["phase"] for r in dist} == {"above 2/h, not oscillating"}
    one_step = {r["flow"]: r["distance"] for r in dist if r["n"] == 1}
    assert one_step["central"] == pytest.approx(c * h, rel=0.02)
    assert all(abs(r["central_h_lambda0"] - sharp[0]["gd_h_lambda0"]) < 1e-6 for r in sharp if r["n"] >= 1)


def test_quadratic_model_is_gd_on_a_quadratic_and_its_first_step_elsewhere():
    A, b = jnp.diag(jnp.array([3.0, 1.0, 0.2])), jnp.array([0.1, -0.2, 0.3])
    loss = Quadratic(A, b)
    theta0, lr = jnp.array([1.0, -1.0, 0.5]), 0.7
    np.testing.assert_allclose(quadratic_model(loss, theta0, lr, 6).thetas, gdflows.gd(loss, theta0, lr, 6), atol=1e-12)

    def quartic(theta):
        return jnp.sum(theta**4) / 4 + jnp.sum(theta**2) / 2

    model = quadratic_model(quartic, theta0, 0.1, 2).thetas
    gd = np.asarray(gdflows.gd(quartic, theta0, 0.1, 2))
    np.testing.assert_allclose(model[1], gd[1], atol=1e-14)  # one step of either is theta - h g
    H = np.diag(3 * np.asarray(theta0) ** 2 + 1)
    g = np.asarray(theta0) ** 3 + np.asarray(theta0)
    delta1 = -0.1 * g
    np.testing.assert_allclose(model[2], theta0 + delta1 - 0.1 * (g + H @ delta1), atol=1e-14)
    assert np.linalg.norm(model[2] - gd[2]) > 1e-4


def test_period_two_average_removes_the_oscillation_and_keeps_a_drift():
    n = np.arange(8)[:, None]
    thetas = 0.3 + 0.05 * n + 0.7 * (-1.0) ** n * np.array([[1.0, -2.0]])
    np.testing.assert_allclose(period_two_average(thetas), 0.3 + 0.05 * n[1:-1] * np.ones((1, 2)), atol=1e-14)


def test_relative_rows_divide_by_how_far_gd_has_moved_so_far():
    gd = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # moved 0, 2, then still 2 (max so far)
    rows = [{"flow": "F", "n": n, "distance": d} for n, d in enumerate([0.0, 0.5, 0.3])]
    assert [r["relative"] for r in relative_rows(rows, gd)] == [0.0, 0.25, 0.15]
    assert relative_rows([{"flow": "F", "n": 0, "distance": 0.1}], gd)[0]["relative"] == np.inf


def _summary(start, holds, rel, phase="at EoS", changes=(0.1, -0.1, 0.1)):
    return [
        {
            "start": start,
            "phase": phase,
            "flow": f,
            "holds_steps": h,
            "relative_after_3": r,
            "distance_after_3": r,
            "one_step_dE": dE,
            "gd_one_step_dE": 0.2,
        }
        for f, h, r, dE in zip(("PF", "NGF", "quadratic"), holds, rel, changes)
    ]


def test_holding_table_reports_the_median_and_range_per_phase_and_over_all_starts():
    summary = _summary(1, (3, 0, 2), (0.01, 0.5, 0.04)) + _summary(2, (1, 0, 2), (0.2, 0.6, 0.03), changes=(-1, -1, 1))
    summary += _summary(3, (0, 0, 0), (9.0, 9.0, 9.0), phase="before EoS")
    table = holding_table(summary)
    eos = [r for r in table if r["phase"] == "at EoS"]
    assert [r["model"] for r in eos] == ["quadratic", "PF", "NGF"]  # a tie on the median: the nearer first
    pf = eos[1]
    assert (pf["starts"], pf["holds_median"], pf["holds_min"], pf["holds_max"]) == (2, 2.0, 1, 3)
    assert pf["relative_after_median"] == pytest.approx(0.105)
    assert [r["sign_right"] for r in eos] == [2, 1, 0]  # GD's loss rose at both starts
    everything = {r["model"]: r for r in table if r["phase"] == "all"}
    assert everything["PF"]["starts"] == 3 and everything["PF"]["holds_min"] == 0
    assert [r["phase"] for r in holding_table(summary[:6])] == ["at EoS"] * 3  # one phase: no "all" rows


def test_averaged_ratio_is_central_over_gradient_flow_against_averaged_gd():
    rows = [
        {"start": s, "phase": "at EoS", "flow": f"{f} {AVERAGED}", "distance_after_3": d}
        for s, pair in ((1, (0.1, 1.0)), (2, (0.3, 1.0)), (3, (0.2, 0.5)))
        for f, d in zip(("central", "NGF"), pair)
    ]
    assert averaged_ratio(rows) == pytest.approx(0.3)
    assert np.isnan(averaged_ratio([r for r in rows if r["flow"].startswith("central")]))


def test_track_start_quadratic_model_and_pf_hold_on_a_quadratic_gradient_flow_does_not():
    loss = Quadratic(jnp.diag(jnp.array([3.0, 1.0, 0.2])), jnp.array([0.1, -0.2, 0.3]))
    lr = 0.66  # h*lambda_0 = 1.98: GD oscillates along u_0
    thetas = np.asarray(gdflows.gd(loss, jnp.array([1.0, -1.0, 0.5]), lr, 10))
    dist, _ = track_start(loss, thetas, lr, 2, 4, ("NGF", "PF", "quadratic"), 1e-10, rtol=1e-12, atol=1e-14)
    summary = {r["flow"]: r for r in summarize(dist)}
    assert {f: r["holds_steps"] for f, r in summary.items()} == {"PF": 4, "quadratic": 4, "NGF": 0}
    gd_change = float(loss(thetas[3]) - loss(thetas[2]))
    assert summary["PF"]["one_step_dE"] == pytest.approx(gd_change, abs=1e-12)  # the PF's own step is GD's
    assert summary["PF"]["gd_one_step_dE"] == pytest.approx(gd_change, abs=1e-15)
    assert abs(summary["NGF"]["one_step_dE"] - gd_change) > 1e-3


def test_an_interrupted_track_resumes_with_the_rows_it_wrote(tmp_path):
    folder = Run.open(tmp_path / "t", {"x": 1})
    dist = [{"start": 5, "phase": "at EoS", "h_lambda0": 2.01, "flow": "PF", "n": 0, "distance": 0.0, "relative": 0.0}]
    sharp = [{"start": 5, "phase": "at EoS", "n": 0, "gd_h_lambda0": 2.01}]
    folder.write_table("track_sharpness", sharp + [{**sharp[0], "start": 9}])  # start 9 was cut off
    folder.write_keyed("track_starts", [{"start": 5, "phase": "at EoS", "cpu_s": 1.5}], "track_distances", dist)
    done, rows, sh = _resume(folder)
    assert done == [{"start": 5, "phase": "at EoS", "cpu_s": 1.5}] and rows == dist and sh == sharp
