"""Predictors of GD's next loss change: scores and intervals against independent computations, and the paired
rule made to say yes, no and inconclusive on constructed data."""

import math

import numpy as np
import pytest
from scipy import stats

from gdflows.experiments import predictors
from gdflows.experiments.predictors import (
    binomial_cdf,
    clopper_pearson_upper,
    every,
    paired,
    scores,
    steps_needed,
    table,
    wilson,
)


@pytest.mark.parametrize("k,n,p", [(0, 5, 0.5), (3, 10, 0.3), (40, 100, 0.45), (700, 1500, 0.5), (9, 10, 0.99)])
def test_binomial_cdf_and_clopper_pearson_match_scipy(k, n, p):
    assert binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-10, abs=1e-300)
    assert clopper_pearson_upper(k, n, 0.025) == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), rel=1e-9)


@pytest.mark.parametrize("k,n", [(0, 10), (7, 10), (45, 100), (100, 100)])
def test_wilson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_holds_the_fraction_itself_at_every_n():
    """At p = 0 and p = 1 the bounds equal p exactly (rounding once put 1 just outside, and a figure's error
    bar below zero)."""
    for n in range(1, 400):
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0


def test_scores_on_a_hand_counted_confusion_table():
    # observed: 4 rises, 6 falls; predicted: rises right 3, falls right 4 (2 false rises)
    observed = [1, 1, 1, 1, -1, -1, -1, -1, -1, -1]
    predicted = [1, 1, 1, -1, -1, -1, -1, -1, 1, 1]
    s = scores(predicted, observed)
    assert s["accuracy"]["value"] == pytest.approx(0.7)
    assert s["rise_recall"]["value"] == pytest.approx(3 / 4) and s["rise_recall"]["n"] == 4
    assert s["rise_precision"]["value"] == pytest.approx(3 / 5) and s["rise_precision"]["n"] == 5
    assert s["balanced_accuracy"]["value"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    low, high = wilson(7, 10)
    assert (s["accuracy"]["low"], s["accuracy"]["high"]) == pytest.approx((low, high))


def test_a_perfect_predictors_balanced_accuracy_interval_stays_within_a_fraction():
    s = scores([1, 1, -1, -1, -1], [1, 1, -1, -1, -1])["balanced_accuracy"]
    up, down = wilson(2, 2), wilson(3, 3)
    spread = np.hypot((up[1] - up[0]) / 2, (down[1] - down[0]) / 2) / 2
    assert s["value"] == 1.0 and s["high"] == 1.0 and s["low"] == pytest.approx(1 - spread)


def test_paired_says_yes_when_the_predictor_wins_most_discordant_steps():
    n = 200
    base = np.zeros(n, bool)
    base[:100] = True  # the baseline is right on half
    right = base.copy()
    right[100:160] = True  # the predictor is also right on 60 more, wrong nowhere else
    v = paired(right, base)
    assert v.answer == "yes"
    assert stats.binomtest(60, 60, 0.5, alternative="greater").pvalue <= 0.05


def test_paired_says_no_when_a_meaningful_gain_is_excluded():
    rng = np.random.default_rng(0)
    right = rng.random(2000) < 0.7
    v = paired(right, right.copy())  # identical predictions on 2,000 steps: no discordant step at all
    assert v.answer == "no"
    worse = right.copy()
    worse[np.flatnonzero(right)[:100]] = False  # the predictor loses 100 steps the baseline keeps
    assert paired(worse, right).answer == "no"


def test_a_perfect_predictor_that_n_cannot_separate_is_inconclusive_never_no():
    # 4 discordant steps, all the predictor's: the smallest p-value reachable is 2^-4 = 0.0625 > 0.05
    observed_right = np.array([True] * 10)
    base = np.array([True] * 6 + [False] * 4)
    v = paired(observed_right, base)
    assert v.answer == "inconclusive"
    assert 0.5**4 > predictors.ALPHA
    # the same perfect predictor with one more discordant step can say yes (2^-5 = 0.031)
    base5 = np.array([True] * 5 + [False] * 5)
    assert paired(observed_right, base5).answer == "yes"


def test_a_baseline_wrong_too_rarely_to_be_beaten_gives_inconclusive_however_long_the_run():
    # 1,000 steps, the baseline wrong at 4: a perfect predictor is right alone on those 4 only (p = 2^-4), and
    # a gain over 10% is excluded, yet "no" would blame the predictor for what the data cannot show
    base = np.ones(1000, bool)
    base[:4] = False
    perfect = np.ones(1000, bool)
    v = paired(perfect, base)
    assert v.answer == "inconclusive" and "wrong at only 4 of 1000 steps" in v.why
    assert paired(base.copy(), base).answer == "inconclusive"  # the same for one that only copies it
    # a run whose loss never rose: "always down" is right at every step, nothing can beat it
    assert paired(perfect, perfect.copy()).answer == "inconclusive"
    # with 5 baseline errors the perfect predictor says yes, and a copy of the baseline says no
    base[4] = False
    assert paired(perfect, base).answer == "yes" and paired(base.copy(), base).answer == "no"


def test_every_baseline_must_fall_for_yes_and_one_no_is_enough_for_no():
    n = 300
    base = np.zeros(n, bool)
    base[:150] = True
    winner = base.copy()
    winner[150:230] = True
    assert every({"a": paired(winner, base), "b": paired(winner, base)}).answer == "yes"
    assert every({"a": paired(winner, base), "b": paired(winner, winner)}).answer == "no"  # no gain over b at all
    tiny = np.array([True, True, False])
    assert every({"a": paired(tiny, np.array([True, False, False]))}).answer == "inconclusive"


def test_steps_needed_reaches_the_stated_power_by_simulation():
    gain, discordant = 0.1, 0.3
    n = steps_needed(gain, discordant)
    # Connor's closed form for these numbers
    za, zb = stats.norm.ppf(0.95), stats.norm.ppf(0.8)
    assert n == math.ceil((za * math.sqrt(0.3) + zb * math.sqrt(0.3 - 0.01)) ** 2 / 0.01)
    rng = np.random.default_rng(1)
    p_b, p_c = (discordant + gain) / 2, (discordant - gain) / 2  # predictor alone right / baseline alone right
    hits = 0
    for _ in range(300):
        u = rng.random(n)
        right, base = u < p_b, (u >= p_b) & (u < p_b + p_c)
        hits += paired(right, base).answer == "yes"
    assert 0.68 <= hits / 300 <= 0.9  # about 0.8 (the exact test is a little conservative)
    with pytest.raises(ValueError, match="gain"):
        steps_needed(0.4, 0.3)


def test_table_reads_metrics_rows_and_scores_every_predictor():
    rng = np.random.default_rng(2)
    rows = []
    for i in range(120):
        rises = i % 3 == 0  # a third of the steps rise
        loss = 1.0
        rows.append(
            {
                "step": i,
                "loss": loss,
                "loss_next": loss + (0.01 if rises else -0.01),
                "dE_dt": 1.0 if rises else -1.0,  # the PF is perfect
                "dE_dt_topk": rng.choice([-1.0, 1.0]),  # its top-k part a coin
                "dE_dt_quadratic": -1.0,
            }
        )
    out = {r["predictor"]: r for r in table(rows, noise_rtol=1e-6)}
    assert out["PF dE/dt"]["accuracy"] == 1.0 and out["PF dE/dt"]["beats_baselines"].answer == "yes"
    assert out["gradient flow (always down)"]["accuracy"] == pytest.approx(80 / 120)
    assert out["majority sign"]["accuracy"] == pytest.approx(80 / 120)
    assert out["PF dE/dt, top k"]["beats_baselines"].answer in ("no", "inconclusive")
    assert "beats_baselines" not in out["one-step quadratic model"]
    assert "PF over one step" not in out  # the rows never computed it


def test_the_pfs_one_step_prediction_is_scored_where_computed_and_a_failed_solve_counts_wrong():
    rows = [
        {"loss": 1.0, "loss_next": 1.0 + (0.01 if i % 3 == 0 else -0.01), "dE_dt": -1.0, "dE_dt_topk": -1.0,
         "dE_dt_quadratic": -1.0, "dE_dt_pf_step": (1.0 if i % 3 == 0 else -1.0) if i else float("nan")}
        for i in range(60)
    ]  # fmt: skip
    out = {r["predictor"]: r for r in table(rows, noise_rtol=1e-6)}
    assert out["PF over one step"]["accuracy"] == pytest.approx(59 / 60) and out["PF over one step"]["steps"] == 60
    assert out["PF over one step"]["beats_baselines"].answer == "yes"


@pytest.mark.parametrize("n", [6, 20, 101, 800])
def test_median_interval_is_the_order_statistics_a_binomial_gives(n):
    values = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))  # x_(i) = i
    middle, low, high = predictors.median_interval(values)
    k = max(j for j in range(1, n // 2 + 1) if stats.binom.cdf(j - 1, n, 0.5) <= 0.025)
    assert (middle, low, high) == (np.median(values), k, n + 1 - k)
    assert stats.binom.cdf(n - k, n, 0.5) - stats.binom.cdf(k - 1, n, 0.5) >= 0.95  # it covers the median


def test_median_interval_has_no_bounds_below_six_values():
    middle, low, high = predictors.median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert middle == 3.0 and math.isnan(low) and math.isnan(high)  # 2 / 2^5 > 0.05: no pair of order statistics
    assert all(math.isnan(v) for v in predictors.median_interval([]))


def test_step_errors_measure_each_rate_against_the_step_gd_took():
    h, rows = 0.1, []
    for i in range(40):
        change = 0.02 if i % 4 == 0 else -0.01  # a rise every 4th step
        rows.append(
            {
                "loss": 1.0,
                "loss_next": 1.0 + change,
                "dE_dt": change / h * 1.1,  # 10% off everywhere
                "dE_dt_pf_step": change / h * (1.02 if i % 4 == 0 else 0.99) if i != 8 else float("nan"),
                "dE_dt_quadratic": change / h * (1.5 if i % 4 == 0 else 1.0),  # exact but on the rises
                "grad_norm": math.sqrt(0.1),  # gradient flow's rate -0.1 is exact on the falls
            }
        )
    out = {r["predictor"]: r for r in predictors.step_errors(rows, h, noise_rtol=1e-6)}
    assert set(out) == {"PF dE/dt", "PF over one step", "one-step quadratic model", "gradient flow (always down)"}
    assert out["PF dE/dt"]["steps"] == 40 and out["PF dE/dt"]["rises"] == 10
    assert out["PF dE/dt"]["median_all"] == pytest.approx(0.1) and out["PF dE/dt"]["max_rises"] == pytest.approx(0.1)
    assert out["PF over one step"]["median_rises"] == pytest.approx(0.02)
    assert out["PF over one step"]["max_rises"] == math.inf  # the failed solve at step 8, a rise
    assert out["one-step quadratic model"]["median_all"] == pytest.approx(0.0, abs=1e-12)
    assert out["one-step quadratic model"]["median_rises"] == pytest.approx(0.5)
    assert out["gradient flow (always down)"]["median_all"] == pytest.approx(0.0, abs=1e-12)
    assert out["gradient flow (always down)"]["median_rises"] == pytest.approx(0.3 / 0.2)  # |-0.1 - 0.2| / 0.2
    cells = {c["predictor"]: c for c in predictors.error_cells(list(out.values()))}
    assert cells["PF dE/dt"]["median error, rises"] == "10% [10%, 10%]"
    assert cells["PF over one step"]["max error, rises"] == "failed"
    assert cells["one-step quadratic model"]["steps (rises)"] == "40 (10)"


def test_step_errors_leave_out_a_predictor_the_rows_lack():
    rows = [{"loss": 1.0, "loss_next": 0.99, "dE_dt": -0.1, "grad_norm": 0.3} for _ in range(10)]
    out = predictors.step_errors(rows, 0.1, noise_rtol=1e-6)
    assert [r["predictor"] for r in out] == ["PF dE/dt", "gradient flow (always down)"]
    assert math.isnan(out[0]["median_rises"]) and math.isnan(out[0]["max_rises"])  # no rise to measure
