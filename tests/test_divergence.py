"""Divergence is a result: the rule (non-finite, or 1e6 x the starting loss; a 1e252 loss has diverged),
and figures and reports that survive inf, NaN and 1e300 in the rows they draw."""

import numpy as np
import pytest

from gdflows.experiments import eos
from gdflows.experiments.configs import TrainConfig
from gdflows.experiments.divergence import first_divergent
from gdflows.experiments.report import eos_plots, plots
from gdflows.experiments.report.runs import Run


@pytest.mark.parametrize(
    "losses, expected",
    [
        ([0.79, 0.7, 0.6], None),
        ([0.79, 7.9e123, 3.9e252], 1),  # float64 climbs far before it overflows: 1e252 is no training loss
        ([0.79, 0.5, 3.9e252], 2),
        ([0.79, np.inf], 1),
        ([0.79, np.nan, 0.1], 1),
        ([0.79, 0.79 * 1e6], None),  # the bound itself has not diverged
        ([0.79, 0.79 * 1e6 * 1.001], 1),
        ([0.79, 0.79 * 1e5 * 9], None),  # far above the start, below the bound
    ],
)
def test_the_divergence_rule(losses, expected):
    assert first_divergent(losses, losses[0]) == expected


def _rows(values):
    """Metrics rows as read back from metrics.csv (strings), the last one recording a divergence."""
    rows = [
        {
            "step": str(10 * i),
            "two_over_h": "20.0",
            "loss": str(v),
            "loss_next": str(2 * v),
            "lambda_0": str(19 + v),
            "lambda_1": "5.0",
            "sc_0_re": str(v),
            "sc_0_im": "3.14",
            "c_0": str(-v),
            "c_0_next": str(v),
            "dE_dt": str(v),
            "observed_dE_dt": str(-v),
            "outcome": "",
        }
        for i, v in enumerate(values)
    ]
    return rows + [{"step": str(10 * len(values)), "loss": "inf", "outcome": f"diverged at step {10 * len(values)}"}]


@pytest.mark.parametrize(
    "values",
    [[0.5, 0.4, 1e300, np.inf, np.nan, 2.0], [0.5, 3.9e252, 1e308], [], [np.nan]],
    ids=["mixed", "huge", "diverged-before-any-diagnosis", "nan"],
)
def test_figures_and_report_survive_inf_nan_and_1e300(tmp_path, values):
    run = Run.open(tmp_path / "r", TrainConfig(steps=100))
    run.write_table("metrics", _rows(values))
    text = eos.report_markdown(run, TrainConfig(steps=100))
    assert f"diverged at step {10 * len(values)}" in text
    for name in ("sharpness.png", "sc0.png", "c0.png", "loss.png"):
        assert (run.path / "figures" / name).stat().st_size > 1000, name


def test_other_figures_survive_blown_up_values(tmp_path):
    rows = [{"flow": "PF", "n": n, "distance": d} for n, d in enumerate([1e-3, np.inf, 1e300, np.nan])]
    plots.distance_curves(tmp_path / "d.png", rows, "t")
    drift = [{"lr": 0.1, "predicted": p, "drift": d} for p, d in [(1e-3, 2e-3), (np.inf, np.nan), (1e300, 1.0)]]
    eos_plots.drift_scatter(tmp_path / "s.png", drift, {"pearson_log": float("nan")})
    x = np.linspace(-1, 1, 5)
    X, Y = np.meshgrid(x, x)
    plots.contour_paths(tmp_path / "c.png", (X, Y, np.where(X > 0.5, np.inf, X**2 + Y**2)), [], "t")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("d.png", "s.png", "c.png"))
    assert np.isnan(plots.drawable([1.0, np.inf, -1e101, 1e99])).tolist() == [False, True, True, False]
