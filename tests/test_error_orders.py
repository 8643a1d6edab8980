"""One-step error orders on a smooth non-quadratic loss (NGF 2, IGR 3, third-order 4, PF 3, PF+NP 4)."""

import numpy as np

from gdflows.experiments.toys import EXPECTED_ORDERS, fitted_slopes, one_step_errors


def test_fitted_slopes_within_015_of_theory():
    slopes = fitted_slopes(one_step_errors(hs=tuple(np.geomspace(0.01, 0.08, 5))))
    for flow, expected in EXPECTED_ORDERS.items():
        assert abs(slopes[flow] - expected) <= 0.15, (flow, slopes[flow])
