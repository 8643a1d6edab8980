r"""Predictors of GD's next loss change, side by side: their scores, with intervals, and the paired rule.

At every diagnosed step n with an observed change above noise, each predictor names a sign for
:math:`\Delta_n = E(\theta_n - h g_n) - E(\theta_n)` (a *rise* when positive):

* the PF's dE/dt at the step's start, :math:`g^T f(H) g = \sum_i sc_i c_i^2` over the whole spectrum
  (``dE_dt``), and its top-k part (``dE_dt_topk``);
* the PF's own prediction of the step, :math:`\mathrm{Re}\,E(\theta_{PF}(h)) - E(\theta)` along the integrated
  PF (``dE_dt_pf_step``, divided by h), where the run computed it (``--pf-step``; a failed solve counts as
  wrong);
* the one-step quadratic model, :math:`-|g|^2 + (h/2)\, g^T H g` (``dE_dt_quadratic``): the cheapest
  predictor, exact on quadratics exactly where the PF is;
* gradient flow, :math:`-|g|^2 < 0`: always a fall;
* the majority sign of the observed changes (known only after the run: a ceiling for any constant guess).

Scores (:func:`scores`): accuracy, balanced accuracy (the mean of the recalls on rises and on falls), and
recall and precision on rises (the events the PF claims to explain), each with a 95% interval: Wilson's
for the binomial fractions, for balanced accuracy the half-sum of the two recalls' Wilson half-widths in
quadrature, cut at 0 and 1.

The rule (:func:`paired`, combined by :func:`every`) compares a predictor with each baseline on the same steps, paired:
of the d steps where exactly one of the two is right, b are the predictor's. Exact McNemar: ``yes`` against
a baseline when :math:`P(X \ge b \mid X \sim \mathrm{Bin}(d, 1/2)) \le \alpha`; ``no`` when the upper
Clopper-Pearson bounds of :math:`d/n` and :math:`b/d` (each at level alpha/2) cap the accuracy gain
:math:`(d/n)(2\pi - 1)` below ``min_gain``;
else ``inconclusive``. First, though: where the baseline is wrong at so few steps w that even a perfect
predictor (b = d = w) could not reach :math:`\alpha` (:math:`2^{-w} > \alpha`, i.e. w < 5 at
:math:`\alpha = 0.05`), no predictor could beat it on these steps and the answer is ``inconclusive``, never
``no`` (e.g. a run whose loss never rose, against "always down"). Over all baselines (an intersection-union
test, so no correction for multiplicity): ``yes`` when it is yes against every one, ``no`` when it is no
against any, else ``inconclusive``.

Size (:func:`step_errors`), beyond the sign: each predictor's rate p against the step's
:math:`\Delta_n / h` as the relative error :math:`|p - \Delta_n/h| / |\Delta_n/h|` (gradient flow's rate
:math:`-|g|^2`), its median with a distribution-free 95% interval (:func:`median_interval`), over all steps and
over the rises. It is descriptive: no rule reads it.

Sample size (:func:`steps_needed`), decided before a run: the n at which the paired test detects an
accuracy gain ``gain`` with discordant fraction ``discordant`` with probability ``power`` (Connor 1987):

.. math:: n = \frac{\left(z_{1-\alpha} \sqrt{\psi} + z_{\rm power} \sqrt{\psi - \delta^2}\right)^2}{\delta^2},
    \qquad \psi = \text{discordant}, \ \delta = \text{gain}.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

from gdflows.experiments.verdicts import INCONCLUSIVE, NO, YES, Verdict

ALPHA = 0.05  # one-sided level of each paired test
# An accuracy gain below this over a baseline does not pay for the PF: its dE/dt costs tens of HVPs, the
# one-step quadratic model one. (A gain this large is what the power calculation of a design sizes for.)
MIN_GAIN = 0.10
Z95 = NormalDist().inv_cdf(0.975)  # the two-sided 95% normal quantile of the intervals


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Bin(n, p), summed in log space (exact to rounding for any n)."""
    if p <= 0 or p >= 1 or k >= n or k < 0:
        return float(k >= n or (k >= 0 and p <= 0))
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
        for i in range(k + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(v - top) for v in logs))


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """The one-sided upper 1 - alpha Clopper-Pearson bound of a fraction k/n: P(X <= k | n, p) = alpha, by bisection."""
    if k >= n:
        return 1.0
    low, high = k / n, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if binomial_cdf(k, n, mid) > alpha else (low, mid)
    return high


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    r"""Wilson's interval for a binomial fraction p = successes / n:

    .. math:: \frac{p + z^2/2n \pm z\sqrt{p(1-p)/n + z^2/4n^2}}{1 + z^2/n}.
    """
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))  # holds p despite rounding


def _fraction(successes: int, n: int) -> dict:
    low, high = wilson(successes, n)
    return {"value": successes / n if n else math.nan, "low": low, "high": high, "n": n}


def scores(predicted: Sequence[float], observed: Sequence[float]) -> dict[str, dict]:
    """Accuracy, balanced accuracy, and recall and precision on rises of the signs ``predicted`` against the
    signs ``observed`` (nonzero, same length), each as {value, low, high, n} (95% intervals, see the module)."""
    p, o = np.sign(np.asarray(predicted, float)), np.sign(np.asarray(observed, float))
    right, rises, said_rise = p == o, o > 0, p > 0
    recall_up, recall_down = (
        _fraction(int(np.sum(right & rises)), int(rises.sum())),
        _fraction(int(np.sum(right & ~rises)), int((~rises).sum())),
    )
    halves = [(r["high"] - r["low"]) / 2 for r in (recall_up, recall_down)]
    balanced = (recall_up["value"] + recall_down["value"]) / 2
    spread = math.hypot(*halves) / 2
    return {
        "accuracy": _fraction(int(right.sum()), len(o)),
        "balanced_accuracy": {
            "value": balanced,
            "low": max(0.0, balanced - spread),  # a fraction: the interval stops at its bounds, as Wilson's does
            "high": min(1.0, balanced + spread),
            "n": len(o),
        },
        "rise_recall": recall_up,
        "rise_precision": _fraction(int(np.sum(right & said_rise)), int(said_rise.sum())),
    }


def paired(right: Sequence[bool], baseline_right: Sequence[bool], alpha: float = ALPHA, min_gain: float = MIN_GAIN):
    """Exact McNemar test of a predictor against one baseline on the same n steps (see the module)."""
    a, c = np.asarray(right, bool), np.asarray(baseline_right, bool)
    n, b, d = len(a), int(np.sum(a & ~c)), int(np.sum(a != c))
    if n == 0:
        return Verdict(INCONCLUSIVE, "no steps")
    wrong = n - int(np.sum(c))
    if 0.5**wrong > alpha:  # a predictor right everywhere would be right alone on these w steps only
        return Verdict(INCONCLUSIVE, f"it is wrong at only {wrong} of {n} steps, too few for any predictor to beat")
    p_value = 1.0 - binomial_cdf(b - 1, d, 0.5) if d else 1.0
    # gain = (d/n)(2 pi - 1) <= (upper bound of d/n) (2 (upper bound of pi) - 1), each bound at alpha / 2
    discordant_upper = clopper_pearson_upper(d, n, alpha / 2)
    pi_upper = clopper_pearson_upper(b, d, alpha / 2) if d else 1.0
    gain_upper = discordant_upper * max(2 * pi_upper - 1, 0.0)
    why = f"right alone on {b} of {d} discordant steps (p = {p_value:.3g}; accuracy gain <= {gain_upper:+.1%})"
    if p_value <= alpha:
        return Verdict(YES, why)
    if gain_upper < min_gain:
        return Verdict(NO, why)
    return Verdict(INCONCLUSIVE, why)


def every(each: Mapping[str, Verdict]) -> Verdict:
    """The intersection-union combination of :func:`paired` verdicts: yes against all, no against any, else
    inconclusive; ``why`` names each."""
    why = "; ".join(f"vs {name}: {v}" for name, v in each.items())
    if all(v.answer == YES for v in each.values()):
        return Verdict(YES, why)
    if any(v.answer == NO for v in each.values()):
        return Verdict(NO, why)
    return Verdict(INCONCLUSIVE, why)


def steps_needed(gain: float, discordant: float, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Steps n at which the paired test detects an accuracy gain ``gain`` with probability ``power``, when a
    fraction ``discordant`` of steps has exactly one of the two right (Connor's formula, see the module)."""
    if not 0 < gain <= discordant <= 1:
        raise ValueError(f"need 0 < gain <= discordant <= 1, got gain {gain}, discordant {discordant}")
    za, zb = NormalDist().inv_cdf(1 - alpha), NormalDist().inv_cdf(power)
    return math.ceil((za * math.sqrt(discordant) + zb * math.sqrt(discordant - gain**2)) ** 2 / gain**2)


PREDICTORS = {  # name: the metrics column whose sign it predicts (None: a constant guess, see the module)
    "PF dE/dt": "dE_dt",
    "PF dE/dt, top k": "dE_dt_topk",
    "PF over one step": "dE_dt_pf_step",  # only where the run computed it (--pf-step)
    "one-step quadratic model": "dE_dt_quadratic",
    "gradient flow (always down)": None,
    "majority sign": None,
}
PF_PREDICTORS = ("PF dE/dt", "PF dE/dt, top k", "PF over one step")
BASELINES = ("one-step quadratic model", "gradient flow (always down)", "majority sign")


def column(rows, key) -> np.ndarray:
    """The values of ``key`` in metrics rows as floats (numbers or strings; missing or empty: NaN)."""
    return np.array([float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows])


def observed_changes(rows, noise_rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask, change): E(theta_n - h g_n) - E_n at each diagnosed row (E: ``curvature_loss`` where the rows have
    it, else ``loss``), and which rows change by more than ``noise_rtol`` |E_n| (the steps that count)."""
    loss = column(rows, "curvature_loss" if "curvature_loss" in rows[0] else "loss")
    change = column(rows, "loss_next") - loss
    return np.isfinite(change) & (np.abs(change) > noise_rtol * np.abs(loss)), change


def predictions(rows, above, observed) -> dict[str, np.ndarray]:
    """Each predictor's sign at the rows ``above`` noise, whose observed signs are ``observed`` (majority: their
    majority sign); a predictor whose column the rows lack (a run logged before it existed) is left out."""
    majority = 1.0 if np.mean(observed > 0) > 0.5 else -1.0
    out = {}
    for name, key in PREDICTORS.items():
        if key is None:
            out[name] = np.full(observed.shape, majority if name == "majority sign" else -1.0)
        elif key in rows[0]:
            out[name] = np.sign(column(rows, key)[above])
    return out


def table(rows, noise_rtol: float, alpha: float = ALPHA, min_gain: float = MIN_GAIN) -> list[dict]:
    """One row per predictor: its :func:`scores` on the diagnosed rows above noise and, for the PF's, the
    :func:`paired` verdict against each baseline (``versus``) and their combination (``beats_baselines``)."""
    above, change = observed_changes(rows, noise_rtol)
    observed = np.sign(change[above])
    predicted = predictions(rows, above, observed)
    right = {name: p == observed for name, p in predicted.items()}
    out = []
    for name, p in predicted.items():
        row = {"predictor": name, "steps": int(above.sum())}
        for score, s in scores(p, observed).items():
            row |= {score: s["value"], f"{score}_low": s["low"], f"{score}_high": s["high"]}
        if name in PF_PREDICTORS:
            row["versus"] = {b: paired(right[name], right[b], alpha, min_gain) for b in BASELINES if b in right}
            row["beats_baselines"] = every(row["versus"])
        out.append(row)
    return out


# name: the metrics column of its predicted rate dE/dt over the step: each predictor's own, but the top-k part
# (a part of the PF's rate, not a rate of the step); gradient flow's is -|g|^2, from the gradient's norm
RATES = {name: key for name, key in PREDICTORS.items() if key not in (None, "dE_dt_topk")} | {
    "gradient flow (always down)": "grad_norm"
}


def median_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    r"""The median of ``values`` and its distribution-free interval from order statistics,
    :math:`[x_{(k)}, x_{(n+1-k)}]` with k the largest integer with :math:`P(\mathrm{Bin}(n, 1/2) \le k - 1)
    \le (1 - \text{level})/2` (NaN bounds where n is too small for any k, i.e. n < 6 at 95%)."""
    x = np.sort(np.asarray(values, float))
    n = len(x)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    k = 0
    while k + 1 <= n / 2 and binomial_cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    middle = float(np.median(x))
    return (middle, float(x[k - 1]), float(x[n - k])) if k else (middle, math.nan, math.nan)


def step_errors(rows, h: float, noise_rtol: float) -> list[dict]:
    r"""How close each predictor's rate comes to the step GD takes: the relative error
    :math:`|p - \Delta_n / h| \,/\, |\Delta_n / h|` at the rows above noise (:func:`observed_changes`), its
    median with a 95% interval (:func:`median_interval`) over all of them and over the rises, and its max over
    the rises. Gradient flow's rate is :math:`-|g|^2`; a failed solve (NaN) counts as an infinite error; a
    predictor whose column the rows lack is left out."""
    above, change = observed_changes(rows, noise_rtol)
    observed = change[above] / h
    rises = observed > 0
    out = []
    for name, key in RATES.items():
        if key not in rows[0]:
            continue
        rate = column(rows, key)[above]
        rate = -(rate**2) if key == "grad_norm" else rate
        error = np.where(np.isfinite(rate), np.abs(rate - observed) / np.abs(observed), np.inf)
        row = {"predictor": name, "steps": len(observed), "rises": int(rises.sum())}
        for part, chosen in (("all", error), ("rises", error[rises])):
            middle, low, high = median_interval(chosen)
            row |= {f"median_{part}": middle, f"median_{part}_low": low, f"median_{part}_high": high}
        row["max_rises"] = float(error[rises].max()) if rises.any() else math.nan
        out.append(row)
    return out


def _percent(value: float) -> str:
    if not math.isfinite(value):
        return "failed" if value == math.inf else "-"
    return f"{100 * value:.0f}%" if value >= 0.1 else f"{100 * value:.2g}%"


def error_cells(rows: Sequence[Mapping]) -> list[dict]:
    """:func:`step_errors` rows as report cells: the medians with their 95% intervals, the max, as percentages."""

    def median(row, part):
        value, low, high = (row[f"median_{part}{end}"] for end in ("", "_low", "_high"))
        if not math.isfinite(low):
            return _percent(value)
        return f"{_percent(value)} [{_percent(low)}, {_percent(high)}]"

    return [
        {
            "predictor": r["predictor"],
            "steps (rises)": f"{r['steps']} ({r['rises']})",
            "median error": median(r, "all"),
            "median error, rises": median(r, "rises"),
            "max error, rises": _percent(r["max_rises"]),
        }
        for r in rows
    ]


SCORES = ("accuracy", "balanced_accuracy", "rise_recall", "rise_precision")
DISPLAY_COLUMNS = ("predictor", "steps", *(s.replace("_", " ") for s in SCORES), "beats every baseline")


def _interval(row, score: str) -> str:
    value, low, high = (row[f"{score}{end}"] for end in ("", "_low", "_high"))
    return "-" if not math.isfinite(value) else f"{value:.1%} [{low:.1%}, {high:.1%}]"


def display(rows: Sequence[Mapping]) -> list[dict]:
    """:func:`table` rows as report cells: each score with its 95% interval, the verdict's answer."""
    out = []
    for row in rows:
        cells = {"predictor": row["predictor"], "steps": row["steps"]}
        cells |= {s.replace("_", " "): _interval(row, s) for s in SCORES}
        verdict = row.get("beats_baselines")
        out.append(cells | {"beats every baseline": verdict.answer if verdict is not None else ""})
    return out
