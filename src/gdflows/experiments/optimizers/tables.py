"""The tables of ``compare-optimizers`` at scale: mean +- std over seeds at equal epochs, FLOPs and wall-clock time.

* Equal epochs: every run's final logged point (all methods train the same epochs).
* Equal FLOPs: per model a budget F, tuned SGD's FLOPs for its run (XLA's
  cost analysis of one step times its steps, :func:`flop_budget`); each run is
  read at the last point logged within F (its steps up to F / its FLOPs per
  step, F widened by :data:`FLOP_RTOL` so that a method whose step costs a few
  bookkeeping operations more is not cut half an epoch short): the parameters
  a user with tuned SGD's compute would hold.
* Equal wall-clock time (indicative, one timing per run): per model a budget T, tuned SGD's mean training
  time for the epochs (:func:`budget`: standard training's cost; methods of
  the same cost per step differ only by timing noise, so the fastest of them
  would pick the luckiest); each run is read at T from its timestamped curve
  (:func:`value_at`: the last point logged at or before T, the parameters a
  user stopping at T would hold).
* Tuned SGD: of the SGD sweep, the rate with the lowest mean final training
  loss over seeds and no failed seed (the training objective; the test set
  plays no part in the choice) (:func:`tuned_sgd`).
* Failed seeds (:func:`run_failed`): diverged, at chance test accuracy, or
  ending at or above the starting test loss; such a method is compared with
  no one (:mod:`gdflows.experiments.optimizers.spread`).

Standard deviations are sample ones (ddof = 1; 0 for a single seed).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from gdflows.experiments.optimizers.spread import failed_run
from gdflows.optim import DAL_FAMILIES

METRICS = ("test_acc", "test_loss")
FLOP_RTOL = 1e-3  # FLOPs within this fraction of F count as within it (optimizers' bookkeeping differs by ~1e-4)


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


def budget(summary, chosen: dict | None = None) -> dict:
    """Per model: the time budget T, tuned SGD's mean training time over its seeds (``chosen``: see
    :func:`tuned_sgd`)."""
    models = {s["model"] for s in summary}
    return {m: sgd["time_s"] for m in models if (sgd := tuned_sgd(summary, m, chosen)) is not None}


def curves_by_run(curves) -> dict:
    """(model, method, seed) -> list of logged points in step order."""
    out = _groups(curves, ("model", "method", "seed"))
    return {k: sorted(v, key=lambda p: num(p["step"])) for k, v in out.items()}


def _at(points, key: str, t: float) -> dict:
    """The metrics and epoch of the last logged point with ``key`` (time_s or step) <= t."""
    times = [p[key] for p in points]
    return {k: value_at(times, [p[k] for p in points], t) for k in METRICS + ("epoch",)}


def flop_budget(summary, chosen: dict | None = None) -> dict:
    """Per model: the FLOP budget F, tuned SGD's FLOPs for its run (FLOPs per step times its mean steps)."""
    models = {s["model"] for s in summary}
    sgd = {m: tuned_sgd(summary, m, chosen) for m in models}
    return {m: s["flops_per_step"] * s["steps"] for m, s in sgd.items() if s is not None}


def run_failed(r: dict, points: list[dict], test_n: int | None, classes: int) -> bool:
    """:func:`~gdflows.experiments.optimizers.spread.failed_run` for a results row: its final test accuracy
    and loss against chance and against its first logged test loss (step 0); ``test_n``: the test images
    (the row's own ``test_n`` when it has one)."""
    n = int(num(r.get("test_n"))) if math.isfinite(num(r.get("test_n"))) else test_n
    if n is None:
        raise ValueError("results rows without test_n need the test set's size: pass test_n")
    start = num(points[0]["test_loss"]) if points else math.nan
    diverged = str(r["diverged"]) == "True"
    return failed_run(num(r["test_acc"]), n, classes, num(r["test_loss"]), start, diverged)


def _stats(model: str, method: str, rs, failed: list[bool]) -> dict:
    row = {"model": model, "method": method, "family": rs[0]["family"], "lr": rs[0]["lr"], "seeds": len(rs)}
    row["diverged"] = sum(str(r["diverged"]) == "True" for r in rs)
    row["failed"] = sum(failed)
    for k in METRICS + ("train_loss",):
        row[k], row[f"{k}_std"] = mean_std(r[k] for r in rs)
    for k in ("time_s", "cpu_s", "ms_per_step"):
        row[k] = mean_std(r[k] for r in rs)[0]
    row["flops_per_step"] = num(rs[0]["flops_per_step"])
    row["steps"] = mean_std(r.get("steps") for r in rs)[0]
    return row


def summarise(rows, curves, test_n: int | None, classes: int, chosen: dict | None = None) -> list[dict]:
    """Per (model, method): mean and std of the final test metrics and training loss, cost per step, the
    seeds that failed (:func:`run_failed`), and the test metrics and epochs reached at the model's time budget
    T (:func:`budget`) and FLOP budget F (:func:`flop_budget`); ``chosen``: see :func:`tuned_sgd`."""
    runs = curves_by_run(curves)
    groups = _groups(rows, ("model", "method"))
    failed = {
        key: [run_failed(r, runs.get((*key, str(r["seed"])), []), test_n, classes) for r in rs]
        for key, rs in groups.items()
    }
    out = [_stats(model, method, rs, failed[(model, method)]) for (model, method), rs in groups.items()]
    budgets, flops = budget(out, chosen), flop_budget(out, chosen)
    for row, rs in zip(out, groups.values()):
        t, f = budgets.get(row["model"], math.nan), flops.get(row["model"], math.nan)
        points = [runs[(row["model"], row["method"], str(r["seed"]))] for r in rs]
        at_t = [_at(p, "time_s", t) for p in points] if math.isfinite(t) else []
        steps_f = f * (1 + FLOP_RTOL) / row["flops_per_step"]
        at_f = [_at(p, "step", steps_f) for p in points] if math.isfinite(f) else []
        for k in METRICS + ("epoch",):
            row[f"{k}_at_T"], row[f"{k}_at_T_std"] = mean_std(a[k] for a in at_t)
            row[f"{k}_at_F"], row[f"{k}_at_F_std"] = mean_std(a[k] for a in at_f)
        row["budget_s"], row["budget_flops"] = t, f
    return out


def tuned_sgd(summary, model: str, chosen: dict | None = None) -> dict | None:
    """The SGD rate of ``model`` with the lowest mean final training loss and no failed seed; with ``chosen``
    (model -> method name, e.g. picked on a validation split), that method's row unless it failed."""
    if chosen is not None:
        row = next((s for s in summary if s["model"] == model and s["method"] == chosen.get(model)), None)
        return row if row is not None and not row["failed"] else None
    sweep = [s for s in summary if s["model"] == model and s["family"] == "gd" and not s["failed"]]
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
