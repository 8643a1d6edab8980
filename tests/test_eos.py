"""Edge-of-stability verdicts on hand-made metrics rows: the majority-sign baseline, and prose and titles that
say only what the verdicts say."""

import pytest

from gdflows.experiments.eos import eos_verdicts, sharpness_title, verdict_prose


def _rows(lam, change, dE, lr=0.1):
    """Rows 10 steps apart: lambda_0, the observed loss change E_(n+1) - E_n (E_n = 1) and the PF's dE/dt."""
    return [
        {
            "step": 10 * i,
            "two_over_h": 2 / lr,
            "lambda_0": lam_i,
            "loss": 1.0,
            "loss_next": 1.0 + c,
            "dE_dt": d,
            "c_0": 1.0,
            "c_0_next": -1.0,
        }
        for i, (lam_i, c, d) in enumerate(zip(lam, change, dE))
    ]


RISE = [10.0] * 10 + [20.0] * 20  # 2/h = 20: below the edge in the first third, at it after
FALL = [20.0] * 30
WANDER = [10.0] * 10 + [15.0] * 20
DOWN_UP = [-0.1] * 20 + [0.1] * 10  # observed changes: majority "down" on 20 of 30 steps


def test_the_pf_must_beat_always_guessing_the_majority_sign():
    right = eos_verdicts(_rows(RISE, DOWN_UP, DOWN_UP))  # every sign right
    assert right["majority_baseline"] == pytest.approx(2 / 3) and right["sign_agreement"] == 1.0
    assert str(right["verdict"]) == "yes" and right["signs_agree"]
    # Always "down" is right on 20 of 30 steps; so is a PF that says "down" throughout, which is no skill.
    lazy = eos_verdicts(_rows(RISE, DOWN_UP, [-1.0] * 30))
    assert lazy["sign_agreement"] == pytest.approx(2 / 3) and not lazy["signs_agree"]
    assert str(lazy["verdict"]).startswith("partly: edge yes, sign no")
    # 24 of 30 right is 80%, 13 points above the baseline: within its margin 2 sqrt(2/9 / 30) = 17 points.
    some = eos_verdicts(_rows(RISE, DOWN_UP, DOWN_UP[:24] + [-0.1] * 6))
    assert some["sign_agreement"] == pytest.approx(0.8) and some["sign"].answer == "no"


def test_sharpness_title_and_prose_follow_the_verdicts():
    cases = {
        "rise": (RISE, "progressive sharpening, then the edge of stability", "rose to 2/h and hovers there"),
        "fall": (FALL, "stays near 2/h (it did not rise from below)", "did not rise to 2/h and hover there"),
        "wander": (WANDER, "rises but does not settle at 2/h", "did not rise to 2/h and hover there"),
        "flat": ([30.0] * 30, "no edge of stability", "did not rise to 2/h and hover there"),
    }
    for lam, title, edge in cases.values():
        v = eos_verdicts(_rows(lam, DOWN_UP, DOWN_UP))
        assert title in sharpness_title(v) and edge in verdict_prose(v)
    right = verdict_prose(eos_verdicts(_rows(RISE, DOWN_UP, DOWN_UP)))
    wrong = verdict_prose(eos_verdicts(_rows(RISE, DOWN_UP, [-1.0] * 30)))
    assert "predicts the sign" in right and "Verdict: **yes**" in right
    assert "does not predict the sign" in wrong and "predicts the sign of the loss change better" not in wrong
    assert "Verdict: **partly: edge yes, sign no**" in wrong
