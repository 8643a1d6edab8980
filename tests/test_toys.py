"""The toy landscapes: saddle escape timing, and the sharp dip with the verdict on its escape."""

import math

import numpy as np
from scipy.optimize import brentq

from gdflows.experiments.toys import basin_edge, dip_verdict, escape_step, saddle_tables, sharp_dip_tables
from gdflows.problems.toys import SharpDip


def _times(rows):
    return {r["flow"]: r["escape_time"] for r in rows}


def test_saddle_escape_pf_tracks_gd_ngf_is_too_fast():
    _, _, rows = saddle_tables(steps=36, substeps=4)
    t = _times(rows)
    assert abs(t["PF"] - t["GD"]) < 0.01 * t["GD"]
    assert t["NGF"] < 0.95 * t["GD"]  # NGF escapes at rate 1 instead of log(1 + h)/h


def test_the_basin_edge_is_the_barrier_top_between_bowl_and_dip():
    dip = SharpDip()

    def slope(x):  # E'(x) = c x + w (x - x1) / s^2 exp(-(x - x1)^2 / (2 s^2))
        return dip.c * x + dip.w * (x - dip.x1) / dip.s**2 * math.exp(-((x - dip.x1) ** 2) / (2 * dip.s**2))

    top = brentq(slope, 0.5, 1.5)  # E' > 0 left of the barrier's top, < 0 right of it
    assert slope(0.5) > 0 > slope(1.5)
    assert abs(basin_edge(dip, 1.7524) - top) < 1.7524 / 4000
    assert escape_step(np.array([1.7, 1.2, top - 1e-3, 0.5]), top) == 2
    assert escape_step(np.array([1.7, 1.8]), top) is None


def test_sharp_dip_gd_leaves_ngf_and_igr_stay_and_the_pf_is_lost_before_the_escape():
    dist, _, facts = sharp_dip_tables(steps=12, substeps=1)
    assert abs(facts["gd_final"]) < 0.1  # GD settles in the broad bowl at x = 0
    final = {r["flow"]: r["distance"] for r in dist if r["n"] == 12}
    # NGF and IGR stay in the sharp minimum, at distance ~ |x_sharp - x_gd| from GD.
    for flow in ("NGF", "IGR"):
        assert abs(final[flow] - abs(facts["x_sharp"] - facts["gd_final"])) < 0.05
    first = {r["flow"]: r["distance"] for r in dist if r["n"] == 1}
    assert first["PF"] < 0.2 * first["NGF"]  # the PF starts out along GD's oscillation
    # GD crosses the barrier at step 5; the PF's solve is lost before, so it does not follow GD out.
    assert facts["gd_escape_step"] == 5
    verdict = dip_verdict(dist, facts)
    assert verdict.answer == "no" and "GD escapes at step 5" in verdict.why
