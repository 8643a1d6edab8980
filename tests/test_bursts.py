"""Loss rises counted as events: bursts, catches and false alarms on hand-made sign sequences whose counts are
read off by eye, and the Wilson interval over the bursts against its closed form."""

import math

import numpy as np
import pytest

from gdflows.experiments import bursts

#            0   1   2   3   4   5   6   7   8   9
OBSERVED = [-1, +1, +1, -1, +1, -1, -1, +1, +1, +1]  # bursts: [1, 3), [4, 5), [7, 10)
CALLED = [+1, +1, +1, -1, -1, +1, +1, -1, +1, np.nan]  # whole, missed, in part (first not called; NaN: no call)


def test_stretches_are_the_maximal_runs_of_true():
    assert bursts.stretches([False, True, True, False, True]) == [(1, 3), (4, 5)]
    assert bursts.stretches([True] * 3) == [(0, 3)]
    assert bursts.stretches([]) == [] and bursts.stretches([False, False]) == []


def test_events_count_bursts_caught_whole_in_part_missed_and_false_alarm_episodes():
    counts = bursts.events(CALLED, OBSERVED)
    # false alarms: step 0 alone, then steps 5-6 together (two episodes, three steps)
    assert counts == {"bursts": 3, "rises": 6, "whole": 1, "in_part": 1, "missed": 1, "first": 1, "false_alarms": 2}
    perfect = bursts.events(OBSERVED, OBSERVED)
    assert perfect["whole"] == perfect["first"] == 3 and perfect["false_alarms"] == perfect["missed"] == 0
    down = bursts.events([-1.0] * 10, OBSERVED)  # gradient flow: misses every burst, never alarms
    assert down["missed"] == 3 and down["whole"] == down["false_alarms"] == 0
    with pytest.raises(ValueError, match="differ in length"):
        bursts.events([1.0], OBSERVED)


def _metrics(observed, called, noise=()):
    """Diagnosed metrics rows with these signs of the loss change (``noise``: indices changed by 1e-9 only)."""
    rows = []
    for i, (o, c) in enumerate(zip(observed, called)):
        change = 1e-9 * o if i in noise else 0.01 * o
        rows.append({"step": 2 * i, "loss": 1.0, "loss_next": 1.0 + change, "dE_dt": c, "dE_dt_quadratic": o})
    return rows


def test_bursts_are_counted_on_the_steps_above_noise_and_never_join_across_runs():
    rows = _metrics(OBSERVED, CALLED)
    one = bursts.run_events(rows, 1e-6)
    assert one["PF dE/dt"] == bursts.events(CALLED, OBSERVED) and one["one-step quadratic model"]["whole"] == 3
    assert set(one) == {"PF dE/dt", "one-step quadratic model"}  # only the columns the rows carry
    # step 3's fall below noise drops out: the bursts at [1, 3) and [4, 5) become one, caught in part
    joined = bursts.run_events(_metrics(OBSERVED, CALLED, noise={3}), 1e-6)["PF dE/dt"]
    assert (joined["bursts"], joined["whole"], joined["in_part"]) == (2, 0, 2)
    # the first run ends on a rise and the second starts on one: still two bursts, not one
    ends_up, starts_up = _metrics([-1, +1], [-1, +1]), _metrics([+1, -1], [+1, -1])
    pooled = {r["predictor"]: r for r in bursts.table([ends_up, starts_up, []], 1e-6)}
    pf = pooled["PF dE/dt"]
    assert (pf["bursts"], pf["rises"], pf["whole"], pf["whole_share"]) == (2, 2, 2, 1.0)


def test_the_share_caught_whole_has_the_wilson_interval_over_the_bursts():
    one_of_two = _metrics([+1, -1, +1], [+1, -1, -1])
    pf = {r["predictor"]: r for r in bursts.table([one_of_two], 1e-6)}["PF dE/dt"]
    z = 1.959963984540054
    half = z * math.sqrt(0.25 / 2 + z * z / 16) / (1 + z * z / 2)  # Wilson at p = 1/2, n = 2 (centre 1/2)
    assert pf["whole_share"] == 0.5
    assert pf["whole_low"] == pytest.approx(0.5 - half) and pf["whole_high"] == pytest.approx(0.5 + half)
    cells = bursts.display([pf])[0]
    assert cells["caught whole"] == "1 (50% [9%, 91%])" and cells["bursts (rises)"] == "2 (2)"
    none = {r["predictor"]: r for r in bursts.table([_metrics([-1, -1], [+1, -1])], 1e-6)}["PF dE/dt"]
    assert none["bursts"] == 0 and math.isnan(none["whole_share"]) and bursts.display([none])[0]["caught whole"] == "-"
    assert none["false_alarms"] == 1
