r"""Loss rises counted as events: bursts of rises, and each predictor's catches and false alarms among them.

Along one run the diagnosed steps are not independent trials: GD's loss rises come in bursts (at a catapult,
several consecutive diagnosed steps rise before the loss falls back), so step counts overstate how much
evidence a run holds. Here the unit is the event. On a run's scored steps (the diagnosed steps whose change is
above noise, :func:`gdflows.experiments.predictors.observed_changes`, in step order):

* a **burst** is a maximal run of consecutive scored steps that rose, :math:`\Delta_n > 0`;
* a predictor **catches** a burst *whole* when it calls a rise at every one of its steps, *in part* when at
  some, and *misses* it when at none; its **first** is caught when it calls the burst's first step a rise;
* a **false alarm** is a maximal run of consecutive scored steps where the predictor calls a rise and GD fell.

Bursts never span two runs. The fraction of bursts caught whole carries a 95% Wilson interval over the bursts
(:func:`gdflows.experiments.predictors.wilson`): with a handful of bursts it is wide, which is the honest
width of the evidence on rises. Only the predictors that name a sign step by step are counted: gradient flow
never calls a rise (it misses every burst and raises no alarm), and a constant guess says nothing about which
steps rise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gdflows.experiments import predictors

PREDICTORS = {name: key for name, key in predictors.PREDICTORS.items() if key is not None}
COUNTS = ("bursts", "rises", "whole", "in_part", "missed", "first", "false_alarms")


def stretches(mask: Sequence[bool]) -> list[tuple[int, int]]:
    """The maximal runs of True in ``mask``, as [start, end) index pairs in order."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def events(predicted: Sequence[float], observed: Sequence[float]) -> dict[str, int]:
    """Bursts of rises in ``observed`` (signs or changes, in step order, one run) and how the signs of
    ``predicted`` (same length; NaN: no call) meet them: the counts of :data:`COUNTS` (see the module)."""
    rose, called = np.asarray(observed, float) > 0, np.asarray(predicted, float) > 0
    if rose.shape != called.shape:
        raise ValueError(f"predicted and observed differ in length: {called.shape} vs {rose.shape}")
    bursts = stretches(rose)
    caught = [int(called[a:b].sum()) for a, b in bursts]
    return {
        "bursts": len(bursts),
        "rises": int(rose.sum()),
        "whole": sum(c == b - a for c, (a, b) in zip(caught, bursts)),
        "in_part": sum(0 < c < b - a for c, (a, b) in zip(caught, bursts)),
        "missed": caught.count(0),
        "first": sum(bool(called[a]) for a, _ in bursts),
        "false_alarms": len(stretches(called & ~rose)),
    }


def run_events(rows: Sequence[dict], noise_rtol: float) -> dict[str, dict[str, int]]:
    """:func:`events` of each step-by-step predictor a run's diagnosed metrics rows carry, on its scored
    steps."""
    above, change = predictors.observed_changes(rows, noise_rtol)
    observed = change[above]
    return {
        name: events(predictors.column(rows, key)[above], observed)
        for name, key in PREDICTORS.items()
        if key in rows[0]
    }


def table(runs: Sequence[Sequence[dict]], noise_rtol: float) -> list[dict]:
    """One row per predictor: its :func:`events` summed over ``runs`` (each a run's diagnosed metrics rows),
    with the fraction of bursts caught whole and its 95% Wilson interval (``whole_low``, ``whole_high``)."""
    totals: dict[str, dict[str, int]] = {}
    for rows in runs:
        if not rows:
            continue
        for name, counts in run_events(rows, noise_rtol).items():
            total = totals.setdefault(name, dict.fromkeys(COUNTS, 0))
            for k in COUNTS:
                total[k] += counts[k]
    out = []
    for name, t in totals.items():
        low, high = predictors.wilson(t["whole"], t["bursts"])
        share = t["whole"] / t["bursts"] if t["bursts"] else float("nan")
        out.append({"predictor": name} | t | {"whole_share": share, "whole_low": low, "whole_high": high})
    return out


def display(rows: Sequence[dict]) -> list[dict]:
    """:func:`table` rows as report cells: the counts, and the share caught whole with its interval."""
    cells = []
    for r in rows:
        whole = (
            "-"
            if not r["bursts"]
            else f"{r['whole']} ({r['whole_share']:.0%} [{r['whole_low']:.0%}, {r['whole_high']:.0%}])"
        )
        cells.append(
            {
                "predictor": r["predictor"],
                "bursts (rises)": f"{r['bursts']} ({r['rises']})",
                "caught whole": whole,
                "in part": r["in_part"],
                "missed": r["missed"],
                "first rise called": r["first"],
                "false alarms": r["false_alarms"],
            }
        )
    return cells
