"""`gdflows track` pieces: flows from GD iterates, ranking, the central-flow sharpness check."""

import jax.numpy as jnp
import numpy as np

import gdflows
from gdflows.experiments.track import central_deviation, summarize, track_start
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
