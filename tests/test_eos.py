"""Edge-of-stability verdicts on hand-made metrics rows: the PF against its baselines (gradient flow, the majority
sign, the one-step quadratic model where logged), and prose and titles that say only what the verdicts say."""

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


RISE3 = [10.0] * 30 + [20.0] * 60  # the same shapes over 90 steps
DOWN_UP3 = [-0.1] * 60 + [0.1] * 30


def test_the_pf_must_beat_always_guessing_the_majority_sign():
    right = eos_verdicts(_rows(RISE, DOWN_UP, DOWN_UP))  # every sign right: alone right on all 10 rises
    assert right["majority_baseline"] == pytest.approx(2 / 3) and right["sign_agreement"] == 1.0
    assert str(right["verdict"]) == "yes" and right["signs_agree"]
    # A PF that says "down" throughout is gradient flow. On 30 steps that cannot exclude a 10-point gain
    # (no discordant step in 30: up to 11.6% of steps may differ), so inconclusive; on 90 it can (4.0%): no.
    lazy = eos_verdicts(_rows(RISE, DOWN_UP, [-1.0] * 30))
    assert lazy["sign_agreement"] == pytest.approx(2 / 3) and lazy["sign"].answer == "inconclusive"
    assert str(lazy["verdict"]).startswith("partly: edge yes, sign inconclusive")
    lazy90 = eos_verdicts(_rows(RISE3, DOWN_UP3, [-1.0] * 90))
    assert lazy90["sign"].answer == "no" and str(lazy90["verdict"]).startswith("partly: edge yes, sign no")
    # 24 of 30 right: alone right on 4 rises, never alone wrong; p = 2^-4 = 0.0625 > 0.05: inconclusive
    some = eos_verdicts(_rows(RISE, DOWN_UP, DOWN_UP[:24] + [-0.1] * 6))
    assert some["sign_agreement"] == pytest.approx(0.8) and some["sign"].answer == "inconclusive"


def test_the_pf_must_also_beat_the_one_step_quadratic_model():
    # the quadratic model wrong at 6 of the 30 rises (it says "down"); a PF that says what it says adds nothing
    quadratic = DOWN_UP3[:60] + [-0.1] * 6 + DOWN_UP3[66:]
    rows = _rows(RISE3, DOWN_UP3, quadratic)
    for r in rows:
        r["dE_dt_quadratic"] = r["dE_dt"]
    v = eos_verdicts(rows)
    assert v["quadratic_agreement"] == pytest.approx(84 / 90) and v["sign"].answer == "no"
    pf = next(r for r in v["predictors"] if r["predictor"] == "PF dE/dt")
    assert pf["versus"]["gradient flow (always down)"].answer == "yes"
    assert pf["versus"]["one-step quadratic model"].answer == "no"
    assert "does not predict the loss change's sign better than all of" in verdict_prose(v)
    # a PF right at those 6 too beats it (p = 2^-6)
    for r, d in zip(rows, DOWN_UP3):
        r["dE_dt"] = d
    assert eos_verdicts(rows)["sign"].answer == "yes"
    # a quadratic model right at every step cannot be beaten on these steps: inconclusive, never no
    for r in rows:
        r["dE_dt_quadratic"] = r["dE_dt"]
    v = eos_verdicts(rows)
    assert v["quadratic_agreement"] == 1.0 and v["sign"].answer == "inconclusive"
    pf = next(r for r in v["predictors"] if r["predictor"] == "PF dE/dt")
    assert pf["versus"]["one-step quadratic model"].answer == "inconclusive"
    assert pf["versus"]["gradient flow (always down)"].answer == "yes"


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
    wrong = verdict_prose(eos_verdicts(_rows(RISE3, DOWN_UP3, [-1.0] * 90)))
    unsure = verdict_prose(eos_verdicts(_rows(RISE, DOWN_UP, [-1.0] * 30)))
    assert "predicts the loss change's sign better than" in right and "Verdict: **yes**" in right
    assert "does not predict the loss change's sign" in wrong and "predicts the loss change's sign better" not in wrong
    assert "Verdict: **partly: edge yes, sign no**" in wrong
    assert "cannot tell" in unsure and "Verdict: **partly: edge yes, sign inconclusive**" in unsure
