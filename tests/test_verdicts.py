"""Every verdict rule made to say each of its answers on synthetic numbers."""

import math

import pytest

from gdflows.experiments import verdicts as V
from gdflows.experiments.optimizers.report import seed_stats, verdicts
from gdflows.experiments.verdicts import SeedStats, Verdict


def _answers(*verdicts):
    return [v.answer for v in verdicts]


def test_a_verdict_prints_its_reason_and_refuses_unknown_answers():
    assert str(Verdict("partly", "speed no")) == "partly: speed no" and str(Verdict("yes")) == "yes"
    assert Verdict("yes").holds and not Verdict("partly").holds
    with pytest.raises(ValueError, match="answer must be one of"):
        Verdict("maybe")


def test_combine():
    y, p, n, i = (Verdict(a) for a in ("yes", "partly", "no", "inconclusive"))
    assert _answers(
        V.combine({"a": y, "b": y}),
        V.combine({"a": y, "b": n}),
        V.combine({"a": p, "b": i}),
        V.combine({"a": n, "b": i}),
        V.combine({"a": i, "b": i}),
    ) == ["yes", "partly", "partly", "no", "inconclusive"]
    assert str(V.combine({"stability": y, "speed": n})) == "partly: stability yes, speed no"


def test_each():
    assert str(V.each({"h = 0.5": True, "h = 1": True})) == "yes"
    assert str(V.each({"h = 0.5": True, "h = 1": False})) == "partly: not for h = 1"
    assert str(V.each({"h = 0.5": False, "h = 1": False})) == "no"


def test_only_one_follows():
    rule = lambda pf, others: V.only_one_follows("PF", pf, others, tol=1e-9, apart=1e-3)  # noqa: E731
    assert str(rule(1e-13, {"NGF": 0.56, "IGR": 0.56})) == "yes"
    assert str(rule(1e-13, {"NGF": 0.56, "IGR": 1e-4})) == "partly: so does IGR"
    assert rule(1e-2, {"NGF": 0.56}).answer == "no"
    assert rule(math.nan, {"NGF": 0.56}).answer == "no"  # a stopped solve does not follow


def test_follows_through_escape():
    # GD leaves the dip at step 5 of 12.
    assert _answers(
        V.follows_through_escape(12, 5, 12),
        V.follows_through_escape(7, 5, 12),
        V.follows_through_escape(5, 5, 12),
        V.follows_through_escape(2, 5, 12),
        V.follows_through_escape(4, 5, 12),
        V.follows_through_escape(12, None, 12),
    ) == ["yes", "partly", "partly", "no", "no", "inconclusive"]


def test_escape_time_matches():
    assert V.escape_time_matches(7.07, 7.074, 6.36).answer == "yes"
    assert V.escape_time_matches(7.07, 7.074, 7.08).answer == "partly"  # the rival is as close
    assert V.escape_time_matches(7.5, 7.074, 6.36).answer == "partly"  # closer than the rival, beyond 1%
    assert V.escape_time_matches(6.0, 7.074, 6.36).answer == "no"
    assert V.escape_time_matches(math.inf, 7.074, 6.36).answer == "no"


def test_edge_of_stability():
    yes, no = Verdict("yes"), Verdict("no")
    assert str(V.edge_of_stability(True, True, yes)) == "yes"
    assert str(V.edge_of_stability(True, True, no)) == "partly: edge yes, sign no"
    assert str(V.edge_of_stability(False, True, yes)) == "partly: edge no, sign yes"
    assert str(V.edge_of_stability(True, False, no)) == "no: edge no, sign no"


def test_drift_checks_the_scale_as_well_as_the_correlation():
    assert str(V.drift_tracks(0.9997, 0.998)) == "yes"
    assert str(V.drift_tracks(0.9997, 2 * 0.998 + 0.01)) == "partly: correlation yes, scale no"  # 2x off, same r
    assert str(V.drift_tracks(0.5, 1.0)) == "partly: correlation no, scale yes"
    assert V.drift_tracks(0.5, 10.0).answer == "no"
    # The band holds the quadratic's ratio 2 (e^-x - 1 + x) / x^2 for every 0 < x <= 2 (x = h lambda).
    for x in (1e-3, 0.5, 1.0, 2.0):
        assert V.DRIFT_BAND[0] <= 2 * (math.exp(-x) - 1 + x) / x**2 <= V.DRIFT_BAND[1]


def test_seed_stats_and_the_spread():
    s = SeedStats.of(4, (1.0, 2.0, 3.0))
    assert (s.seeds, s.diverged, s.mean, s.std) == (4, 1, 2.0, 1.0)  # sample standard deviation
    assert math.isnan(SeedStats.of(3, (1.0,)).std) and math.isnan(SeedStats.of(3, ()).mean)
    assert V.spread(3.0, 4.0) == 5.0
    assert V.lower(1.0, 0.1, 2.0, 0.1).answer == "yes"
    assert V.lower(2.0, 0.1, 1.0, 0.1).answer == "no"
    assert V.lower(1.0, 0.5, 1.6, 0.5).answer == "inconclusive"  # 0.6 < sqrt(0.5)
    assert V.lower(1.0, math.nan, 2.0, 0.1).answer == "inconclusive"


def test_more_stable_does_not_count_ties():
    none, two = SeedStats.of(3, (1, 1, 1)), SeedStats.of(3, (1,))
    assert V.more_stable(none, two).answer == "yes" and V.more_stable(two, none).answer == "no"
    assert V.more_stable(none, none).answer == "inconclusive"
    assert V.more_stable(SeedStats.of(6, (1,) * 3), SeedStats.of(3, (1,))).answer == "yes"  # 3/6 < 2/3


def _stats(diverged, *losses):
    assert len(losses) == 3 - diverged
    return SeedStats.of(3, losses)


def test_stability_tradeoff():
    # One surviving seed at p = 0.5 has no spread: that speed pair is inconclusive.
    one = {0.5: _stats(2, 0.05), 1.0: _stats(1, 0.10, 0.11), 2.0: _stats(0, 0.20, 0.21, 0.22)}
    assert str(V.stability_tradeoff(one)) == "partly: stability yes, speed partly"
    decided = {0.5: _stats(1, 0.05, 0.06), 1.0: _stats(1, 0.10, 0.11), 2.0: _stats(0, 0.20, 0.21, 0.22)}
    assert str(V.stability_tradeoff(decided)) == "partly: stability partly, speed yes"
    both = {0.5: SeedStats.of(4, (0.05, 0.06)), 1.0: _stats(1, 0.10, 0.11), 2.0: _stats(0, 0.20, 0.21, 0.22)}
    assert str(V.stability_tradeoff(both)) == "yes"
    # Today's CPU run: p = 0.5 always diverges, p = 1 and 2 never, losses within the spread.
    today = {0.5: _stats(3), 1.0: _stats(0, 0.1215, 0.1212, 0.1156), 2.0: _stats(0, 0.134, 0.072, 0.132)}
    assert str(V.stability_tradeoff(today)) == "partly: stability partly, speed inconclusive"
    reversed_ = {0.5: _stats(0, 0.30, 0.31, 0.32), 1.0: _stats(1, 0.20, 0.21), 2.0: _stats(3)}
    assert str(V.stability_tradeoff(reversed_)) == "no: stability no, speed no"
    ties = {1.0: _stats(0, 0.1, 0.2, 0.3), 2.0: _stats(0, 0.1, 0.2, 0.3)}
    assert V.stability_tradeoff(ties).answer == "inconclusive"


def test_cost_ratio():
    assert _answers(V.cost_ratio(2.08), V.cost_ratio(3.1), V.cost_ratio(4.0)) == ["yes", "partly", "no"]


def _summary(method, family, mean, std, seeds=3, diverged=0):
    row = {"model": "mlp", "regime": "full", "method": method, "family": family, "seeds": seeds}
    return row | {"diverged": diverged, "final_loss_mean": mean, "final_loss_std": std, "test_acc_mean": 0.8}


def test_compare_optimizers_names_a_winner_only_beyond_the_spread():
    summary = [
        _summary("dal_p1_hvp", "dal", 0.12, 0.003),
        _summary("gd_lr0.3", "gd", 0.10, 0.004),  # lower by 0.02 > spread 0.005: beats DAL
        _summary("gd_lr0.1", "gd", 0.119, 0.005),  # lower by 0.001: a tie
        _summary("adam_lr0.001", "adam", 0.5, 0.1),  # higher: neither listed
        _summary("gd_lr3", "gd", math.nan, math.nan, diverged=3),
        _summary("dal_momentum", "dal_momentum", 0.2, 0.01),
        _summary("momentum_lr0.03", "momentum", 0.205, 0.01),  # within the spread of dal_momentum
    ]
    lines = verdicts(summary)
    assert "lower final loss beyond the seeds' spread: gd_lr0.3;" in lines[0]
    assert "so no winner: gd_lr0.1." in lines[0]
    assert lines[1].endswith("lower loss neither (within the seeds' spread).")
    st = seed_stats({"seeds": "3", "diverged": "1", "final_loss_mean": "0.1", "final_loss_std": ""})  # as in the CSV
    assert (st.seeds, st.diverged, st.mean) == (3, 1, 0.1) and math.isnan(st.std)


def test_central_tracks():
    assert V.central_tracks(True, True, True) == Verdict("yes")
    assert V.central_tracks(True, False, True) == Verdict("partly", "not sharpness")
    assert V.central_tracks(False, True, True) == Verdict("partly", "not loss")
    assert V.central_tracks(False, True, False) == Verdict("no")  # the eigenvalue alone is not tracking
    assert V.central_tracks(False, False, False) == Verdict("no")


def test_meets_says_yes_no_and_inconclusive_when_nothing_was_measured():
    assert _answers(V.meets(0.04, 0.05), V.meets(0.06, 0.05), V.meets(float("nan"), 0.05)) == [
        "yes",
        "no",
        "inconclusive",
    ]
    assert _answers(V.meets(0.99, 0.95, at_most=False), V.meets(0.9, 0.95, at_most=False)) == ["yes", "no"]
    assert str(V.meets(float("nan"), 1.0)) == "inconclusive: not measured"
