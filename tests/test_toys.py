"""The toy landscapes: saddle escape timing and the sharp dip."""

from gdflows.experiments.toys import saddle_tables, sharp_dip_tables


def _times(rows):
    return {r["flow"]: r["escape_time"] for r in rows}


def test_saddle_escape_pf_tracks_gd_ngf_is_too_fast():
    _, _, rows = saddle_tables(steps=36, substeps=4)
    t = _times(rows)
    assert abs(t["PF"] - t["GD"]) < 0.01 * t["GD"]
    assert t["NGF"] < 0.95 * t["GD"]  # NGF escapes at rate 1 instead of log(1 + h)/h


def test_sharp_dip_gd_leaves_ngf_and_igr_stay():
    dist, _, facts = sharp_dip_tables(steps=12, substeps=1)
    assert abs(facts["gd_final"]) < 0.1  # GD settles in the broad bowl at x = 0
    final = {r["flow"]: r["distance"] for r in dist if r["n"] == 12}
    # NGF and IGR stay in the sharp minimum, at distance ~ |x_sharp - x_gd| from GD.
    for flow in ("NGF", "IGR"):
        assert abs(final[flow] - abs(facts["x_sharp"] - facts["gd_final"])) < 0.05
    first = {r["flow"]: r["distance"] for r in dist if r["n"] == 1}
    assert first["PF"] < 0.2 * first["NGF"]  # the PF starts out along GD's oscillation
