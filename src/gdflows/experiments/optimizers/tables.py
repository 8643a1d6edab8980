"""The tables of ``compare-optimizers`` at scale: mean +- std over seeds at equal epochs and at equal wall-clock time.

* Equal epochs: every run's final logged point (all methods train the same epochs).
* Equal wall-clock time: per model a budget T, the mean training time of the
  fastest method outside the DAL families (:func:`budget`); each run is read
  at T from its timestamped curve (:func:`value_at`: the last point logged at
  or before T, the parameters a user stopping at T would hold).
* Tuned SGD: of the SGD sweep, the rate with the lowest mean final training
  loss over seeds and no diverged seed (the training objective; the test set
  plays no part in the choice) (:func:`tuned_sgd`).

Standard deviations are sample ones (ddof = 1; 0 for a single seed).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

DAL_FAMILIES = ("dal", "dal_momentum", "dal_adam")
METRICS = ("test_acc", "test_loss")


def num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std) of the finite values; (nan, nan) when there are none."""
    v = np.asarray([x for x in map(num, values) if math.isfinite(x)])
    if not v.size:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def value_at(times, values, t: float) -> float:
    """The value at the last point with time <= t (times ascending, the first at 0)."""
    times = np.asarray([num(x) for x in times])
    i = int(np.searchsorted(times, t, side="right")) - 1
    return num(values[max(i, 0)])


def _groups(rows, keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(str(r[k]) for k in keys)].append(r)
    return out


def budget(rows) -> dict:
    """Per model: the least mean training time over seeds among the methods outside the DAL families
    whose seeds all finished."""
    out = {}
    for (model, _), rs in _groups(rows, ("model", "method")).items():
        if rs[0]["family"] in DAL_FAMILIES or any(str(r["diverged"]) == "True" for r in rs):
            continue
        out[model] = min(out.get(model, math.inf), float(np.mean([num(r["time_s"]) for r in rs])))
    return out


def curves_by_run(curves) -> dict:
    """(model, method, seed) -> list of logged points in step order."""
    out = _groups(curves, ("model", "method", "seed"))
    return {k: sorted(v, key=lambda p: num(p["step"])) for k, v in out.items()}


def _at_time(points, t: float) -> dict:
    times = [p["time_s"] for p in points]
    return {k: value_at(times, [p[k] for p in points], t) for k in METRICS + ("epoch",)}


def summarise(rows, curves, budgets: dict) -> list[dict]:
    """Per (model, method): mean and std of the final test metrics and training loss, and of the test
    metrics and epochs reached at the model's time budget; cost per step."""
    runs = curves_by_run(curves)
    out = []
    for (model, method), rs in _groups(rows, ("model", "method")).items():
        t = budgets.get(model, math.nan)
        at_t = [_at_time(runs[(model, method, str(r["seed"]))], t) for r in rs] if math.isfinite(t) else []
        row = {"model": model, "method": method, "family": rs[0]["family"], "lr": rs[0]["lr"], "seeds": len(rs)}
        row["diverged"] = sum(str(r["diverged"]) == "True" for r in rs)
        for k in METRICS + ("train_loss",):
            row[k], row[f"{k}_std"] = mean_std(r[k] for r in rs)
        for k in METRICS + ("epoch",):
            row[f"{k}_at_T"], row[f"{k}_at_T_std"] = mean_std(a[k] for a in at_t)
        row["budget_s"] = t
        row["time_s"] = mean_std(r["time_s"] for r in rs)[0]
        row["cpu_s"] = mean_std(r["cpu_s"] for r in rs)[0]
        row["ms_per_step"] = mean_std(r["ms_per_step"] for r in rs)[0]
        row["flops_per_step"] = num(rs[0]["flops_per_step"])
        out.append(row)
    return out


def tuned_sgd(summary, model: str) -> dict | None:
    """The SGD rate of ``model`` with the lowest mean final training loss and no diverged seed."""
    sweep = [s for s in summary if s["model"] == model and s["family"] == "gd" and not s["diverged"]]
    sweep = [s for s in sweep if math.isfinite(s["train_loss"])]
    return min(sweep, key=lambda s: s["train_loss"]) if sweep else None


def field(summary, model: str) -> list[dict]:
    """The methods DAL is judged against on ``model``: tuned SGD and every method outside the DAL families and
    the SGD sweep."""
    best = tuned_sgd(summary, model)
    rest = [s for s in summary if s["model"] == model and s["family"] not in DAL_FAMILIES + ("gd",)]
    return ([best] if best else []) + rest


def dal_rows(summary, model: str) -> list[dict]:
    return [s for s in summary if s["model"] == model and s["family"] in DAL_FAMILIES]
