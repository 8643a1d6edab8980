"""Where the PF follows GD: exact on a quadratic at every h lambda_0, lost on the sharp dip past the edge,
and the tables read back as they were written."""

import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import PFValidityConfig
from gdflows.experiments.pf_validity import (
    Problem,
    findings,
    load_summary,
    relative_distances,
    sharp_dip,
    summary_rows,
    validity_rows,
)
from gdflows.experiments.report.runs import Run


def test_relative_distance_is_over_the_farthest_gd_has_moved():
    gd = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    pf = gd + np.array([[0.0, 0.0], [0.2, 0.0], [0.0, 0.4], [3.0, 0.0]])
    np.testing.assert_allclose(relative_distances(pf, gd), [0.0, 0.1, 0.2, 0.75])
    assert np.isnan(relative_distances(gd * np.nan, gd)[1])  # a stopped solve has no state


def test_on_a_quadratic_the_pf_follows_gd_at_every_h_lambda():
    A = jnp.diag(jnp.array([4.0, 1.0]))
    problem = Problem("quadratic", lambda th: 0.5 * th @ A @ th, jnp.array([0.3, -0.2]), method="dense")
    assert problem.top_eigenvalue() == pytest.approx(4.0)
    rows = validity_rows(problem, (0.5, 1.5, 2.5), steps=5, rtol=1e-10, atol=1e-12)
    assert max(r["relative"] for r in rows) < 1e-8  # the PF is GD's exact interpolation on a quadratic
    summary = summary_rows(rows)
    assert [s["followed_0.05"] for s in summary] == [5, 5, 5] and [s["edge_distance"] for s in summary] == [
        -1.5,
        -0.5,
        0.5,
    ]
    assert max(s["max_imag"] for s in summary) < 1e-8  # complex between GD steps, real at t = n h
    assert findings(summary, 0.05) == ["- quadratic: within 5% of GD for all 5 steps up to h lambda_0 = 2.5."]


def test_on_the_sharp_dip_the_pf_is_lost_past_the_edge():
    rows = validity_rows(sharp_dip(), (0.5, 3.5), steps=6, rtol=1e-6, atol=1e-9, max_steps=512)
    small, large = summary_rows(rows)
    assert small["followed_0.05"] == 6 and small["status"] == "ok"
    assert large["followed_0.2"] < 4 and large["status"] == "max_steps"  # GD escapes the dip at step 5
    lost = large["followed_0.05"]
    assert findings([small, large], 0.05) == [
        f"- sharp dip: within 5% of GD for all 6 steps up to h lambda_0 = 0.5; steps followed: {lost} at 3.5."
    ]


def test_the_summary_reads_back_as_written_and_unknown_problems_are_refused(tmp_path):
    summary = [
        {"problem": "p", "h_lambda": 2.5, "edge_distance": 0.5, "followed_0.05": 3, "followed_0.2": 4, "steps": 6}
        | {"max_imag": 0.01, "status": "max_steps", "field_evals": 100}
    ]
    Run(tmp_path, {}).write_table("pf_validity_summary", summary)
    assert load_summary(tmp_path) == summary
    with pytest.raises(GDFlowsError, match="--problems 'ridge' is not one of"):
        PFValidityConfig(out=tmp_path / "v", problems=("ridge",)).run()
