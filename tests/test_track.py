"""`gdflows track` pieces: flows from GD iterates, ranking, labels by whether GD oscillates, the central flow."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.experiments.track import central_deviation, phase, summarize, track_start
from gdflows.problems.quadratic import Quadratic


def test_track_start_on_a_quadratic_pf_is_exact_and_ranked_first():
    loss = Quadratic(jnp.diag(jnp.array([3.0, 1.0, 0.2])), jnp.array([0.1, -0.2, 0.3]))
    lr = 0.7  # h*lambda = 2.1 (GD oscillates out along u_0), 0.7, 0.14
    thetas = np.asarray(gdflows.gd(loss, jnp.array([1.0, -1.0, 0.5]), lr, 8))
    dist, sharp = track_start(loss, thetas, lr, 2, 5, ("NGF", "IGR", "PF"), rtol=1e-12, atol=1e-14)
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
    dist, sharp = track_start(loss, thetas, h, 1, 5, ("central",))
    assert {r["phase"] for r in dist} == {"above 2/h, not oscillating"}
    one_step = {r["flow"]: r["distance"] for r in dist if r["n"] == 1}
    assert one_step["central"] == pytest.approx(c * h, rel=0.02)
    assert all(abs(r["central_h_lambda0"] - sharp[0]["gd_h_lambda0"]) < 1e-6 for r in sharp if r["n"] >= 1)
