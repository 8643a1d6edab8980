"""Declared tolerances of reported numbers: each helper's closed form, and compare's verdict on each case."""

import math

import pytest

from gdflows.experiments.report import tolerances as t


def test_each_tolerance_is_its_closed_form():
    assert t.exact(7) == t.Measured(7.0, 0.0, "exact")
    assert t.binomial(0.96, 100).tol == pytest.approx(2 * math.sqrt(2 * 0.96 * 0.04 / 100))  # 0.0554
    assert t.binomial(1.0, 50).tol == pytest.approx(1 / 50)  # no spread at 100%: one event more or less
    assert t.seeds(0.113, 0.035, 3).tol == pytest.approx(2 * 0.035 * math.sqrt(2 / 3))  # 0.0572
    assert t.seeds_std(0.02).tol == pytest.approx(0.03)
    assert t.relative(-200, 0.05, "why").tol == pytest.approx(10.0)
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        t.Measured(1.0, -1e-3, "bad")


def _rows(**numbers):
    return t.rows("claim A", numbers)


def test_compare_passes_within_and_names_the_number_beyond_its_tolerance():
    committed = _rows(loss=t.seeds(0.113, 0.035, 3), steps=t.exact(12))
    assert t.compare(_rows(loss=t.exact(0.113 + 0.057), steps=t.exact(12)), committed) == []
    assert t.compare(_rows(loss=t.exact(0.113 - 0.058), steps=t.exact(12)), committed) == [
        "claim A / loss: 0.055 against 0.113 +- 0.0572 (2 x the seeds' spread of a mean of 3)"
    ]
    assert t.compare(_rows(loss=t.exact(0.113), steps=t.exact(13)), committed) == [
        "claim A / steps: 13 against 12 +- 0 (exact)"
    ]


def test_compare_names_numbers_missing_on_either_side_and_nan_matches_only_nan():
    committed = _rows(a=t.exact(1), b=t.exact(math.nan))
    assert t.compare(_rows(b=t.exact(math.nan), c=t.exact(2)), committed) == [
        "claim A / a: not computed by this run",
        "claim A / c: not in the committed numbers",
    ]
    assert t.compare(_rows(a=t.exact(1), b=t.exact(0.0)), committed) == ["claim A / b: 0 against nan +- 0 (exact)"]


def test_compare_reads_the_strings_of_a_csv():
    committed = [{"claim": "c", "number": "r", "value": "0.9997", "tolerance": "0.005", "basis": "statistic"}]
    assert t.compare([{"claim": "c", "number": "r", "value": "0.9960"}], committed) == []
    assert t.compare([{"claim": "c", "number": "r", "value": "0.9940"}], committed) != []
