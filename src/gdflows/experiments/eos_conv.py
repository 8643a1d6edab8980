r"""``gdflows eos-conv``: the edge of stability on conv nets, read through the PF (docs/theory.md, section 7).

Full-batch GD on a VGG-style and a ResNet-style net (no normalisation layers,
a holomorphic activation) on a class-balanced Fashion-MNIST subset, as Cohen et
al. (2021) set it up: rates h with h lambda_0 <= 1 at initialisation, so that
progressive sharpening happens, several seeds per rate. Every run is a
``gdflows train`` run (its config built by :func:`train_configs`, its folder
``<out>/<model>_lr<h>_s<seed>``), so there is one training loop and one set of
diagnostics: every ``log_every`` steps, and every ``edge_every`` once lambda_0
reached ``edge_at`` 2/h (the run ends ``edge_diagnoses`` diagnoses later), the
top-k lambda_i, sc_i, c_i and the PF's

.. math:: \frac{dE}{dt} = \sum_i sc_i\, c_i^2 \quad (\text{the whole spectrum, through the PF field})

against the observed change E(theta_n - h g_n) - E(theta_n). Each run is then
summarised from its metrics rows (:func:`summary_row`): h lambda_0 at the start
and at the end, the first logged step at the edge, the band lambda_0 / (2/h)
stays in from there (:func:`edge_band`: hovering), and the PF's sign prediction
against its baselines (the one-step quadratic model, gradient flow, the majority
sign), pooled over each net and rate's seeds (:func:`pooled_predictors`). The
report's prose and figure titles follow those verdicts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gdflows.data import load_dataset  # noqa: E402
from gdflows.experiments import bursts, predictors, verdicts  # noqa: E402
from gdflows.experiments.configs import EosConvConfig, TrainConfig, changed_flags  # noqa: E402
from gdflows.experiments.eos import diagnosed, eos_verdicts, first_at_edge, outcome  # noqa: E402
from gdflows.experiments.errors import RunInterrupted  # noqa: E402
from gdflows.experiments.report.markdown import markdown_table  # noqa: E402
from gdflows.experiments.report.plots import save  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402
from gdflows.experiments.report.timings import cpu_text, timed  # noqa: E402
from gdflows.experiments.train import run_outcome  # noqa: E402

__all__ = ["EosConvConfig", "run", "train_configs", "summary_row", "summary_rows", "summary_prose", "markdown"]

NAMES = {"vgg": "VGG", "resnet": "ResNet"}
SUMMARY_COLUMNS = (
    "model",
    "lr",
    "seed",
    "outcome",
    "hl0_start",
    "hl0_max",
    "hl0_end",
    "first_at_edge",
    "at_edge",
    "band_mean",
    "band_max",
    "above_2h",
    "edge_of_stability",
    "steps_above_noise",
    "sign",
    "verdict",
)
SUMMARY_FORMAT = {
    "lr": "{:g}",
    "hl0_start": "{:.3f}",
    "hl0_max": "{:.3f}",
    "hl0_end": "{:.3f}",
    "band_mean": "{:.3f}",
    "band_max": "{:.3f}",
    "sign_agreement": "{:.1%}",
    "quadratic_agreement": "{:.1%}",
    "majority_baseline": "{:.1%}",
    "re_sc0_last_third": "{:+.3f}",
}
# the design's sample size, decided before the runs: a 10-point accuracy gain over a baseline, with 30% of
# steps discordant (one of the two right), detected at 80% power by the paired rule
DESIGN_GAIN, DESIGN_DISCORDANT, DESIGN_POWER = 0.10, 0.30, 0.8
MIN_AT_EDGE = 10  # diagnoses from the first at the edge that hovering needs (fewer: not seen to hover)


def run_name(model: str, lr: float, seed: int) -> str:
    return f"{model}_lr{lr:g}_s{seed}"


def _shared(cfg, cls, **given):
    """``cls(**given)`` with every other field of ``cls`` that ``cfg`` also has taken from ``cfg``."""
    names = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(cfg)}
    return cls(**({name: getattr(cfg, name) for name in names} | given))


def train_configs(cfg: EosConvConfig) -> list[TrainConfig]:
    """One full-batch ``gdflows train`` config per (model, rate, seed), each into its sub-folder of ``cfg.out``
    (the net is ``cfg.net`` with that model and seed; the diagnosis settings are ``cfg``'s fields of the same
    names)."""
    cfg = cfg.resolved()
    configs = []
    for model in cfg.models:
        for lr in getattr(cfg, f"{model}_lrs"):
            for seed in cfg.seeds:
                net = dataclasses.replace(cfg.net, model=model, seed=seed)
                out = Path(cfg.out) / run_name(model, lr, seed)
                configs.append(_shared(cfg, TrainConfig, out=out, net=net, lr=lr))
    return configs


def flags(cfg: EosConvConfig) -> str:
    """The command-line flags that give ``cfg`` (``--size accelerator`` where it is that size; a data folder
    shows as DIR)."""
    cfg = dataclasses.replace(cfg.resolved(), out=EosConvConfig.out)
    size = "cpu"
    without_data = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, data_dir=None))
    if without_data == EosConvConfig(size="accelerator").resolved():
        size = "accelerator"
    base = EosConvConfig(size=size).resolved()
    run_flags = changed_flags(cfg, base, skip=("net",))
    net_flags = changed_flags(cfg.net, base.net, prefix="--net.", skip=("model",))
    return (" --size accelerator" if size == "accelerator" else "") + run_flags + net_flags


def edge_band(rows, first: int) -> dict:
    """How lambda_0 sits at the edge from the first step at it (``first``) on: the diagnoses there
    (``at_edge``), the mean and max of |lambda_0 / (2/h) - 1| over them (``band_mean``, ``band_max``), and how
    many of them have lambda_0 >= 2/h (``above_2h``: a run that hovers crosses 2/h, one that approaches it from
    below does not; the hovering rule's band alone cannot tell the two apart)."""
    at = [r for r in rows if float(r["step"]) >= first]
    ratio = np.array([float(r["lambda_0"]) / float(r["two_over_h"]) for r in at])
    dev = np.abs(ratio - 1)
    return {
        "at_edge": len(at),
        "band_mean": float(np.mean(dev)),
        "band_max": float(np.max(dev)),
        "above_2h": int(np.sum(ratio >= 1)),
    }


def summary_row(
    model: str,
    lr: float,
    rows,
    tol: float = 0.1,
    noise_rtol: float = 1e-6,
    seed: int = 0,
    edge_at: float = 0.98,
    budget_outcome: str | None = None,
) -> dict:
    """One run's line of the summary, from its metrics rows (dicts; strings or numbers).

    ``outcome``: ``budget_outcome`` when given (the run's under its step budget), else the rows' own.

    ``reached_edge``: some logged lambda_0 >= ``edge_at`` 2/h; ``first_at_edge``: the first such step; from
    there on, :func:`edge_band`. ``edge_of_stability``: lambda_0 rose from below the edge (a diagnosis before
    ``first_at_edge``) and stayed within ``tol`` of 2/h from then on (``band_max <= tol``, over at least
    :data:`MIN_AT_EDGE` diagnoses): progressive sharpening, then hovering. ``sign``: the PF's dE/dt against
    every baseline on this run's steps alone (:func:`~gdflows.experiments.eos.eos_verdicts`; the report's
    verdict pools the seeds); ``verdict``:
    :func:`~gdflows.experiments.verdicts.edge_of_stability` of both. ``re_sc0_last_third``: the mean Re(sc_0)
    over the last third of the run. ``hl0_max``: the largest h lambda_0 diagnosed, at step ``hl0_max_at``.
    Fewer than 3 diagnoses: a "no" naming them.
    """
    diag = diagnosed(rows)
    found = outcome(rows) if budget_outcome is None else budget_outcome
    row = {"model": model, "lr": lr, "seed": seed, "outcome": found, "logged": len(diag)}
    if len(diag) < 3:
        return row | {"reached_edge": "no", "verdict": f"no: {len(diag)} diagnosed steps (fewer than 3)"}
    v = eos_verdicts(diag, tol, noise_rtol)
    steps = np.array([float(r["step"]) for r in diag])
    last = steps >= 2 * steps[-1] / 3
    found = first_at_edge(diag, edge_at)
    first = None if found is None else int(float(diag[found]["step"]))
    band = {"at_edge": 0} if first is None else edge_band(diag, first)
    edge = first is not None and first > steps[0] and band["at_edge"] >= MIN_AT_EDGE and band["band_max"] <= tol
    lam = np.array([float(r["lambda_0"]) for r in diag])
    return (
        row
        | band
        | {
            "hl0_start": lr * float(diag[0]["lambda_0"]),
            "hl0_end": lr * float(diag[-1]["lambda_0"]),
            "hl0_max": lr * float(lam.max()),
            "hl0_max_at": int(steps[int(np.argmax(lam))]),
            "reached_edge": "no" if first is None else "yes",
            "first_at_edge": "" if first is None else first,
            "steps_above_noise": v["steps_above_noise"],
            "sign_agreement": v["sign_agreement"],
            "quadratic_agreement": v["quadratic_agreement"],
            "majority_baseline": v["majority_baseline"],
            "sign": v["sign"].answer,
            "re_sc0_last_third": float(np.mean([float(r["sc_0_re"]) for r, at in zip(diag, last) if at])),
            "edge_of_stability": "yes" if edge else "no",
            "verdict": str(verdicts.edge_of_stability(edge, edge, v["sign"])),
        }
    )


def run_metrics(folder: Path, cfg: EosConvConfig) -> list[tuple[TrainConfig, list[dict]]]:
    """Each run of ``cfg`` that has metrics in ``folder`` (finished or not), with its metrics rows."""
    runs = []
    for train in train_configs(cfg):
        metrics = Path(folder) / train.out.name / "metrics.csv"
        if metrics.is_file():
            runs.append((train, read_csv(metrics)))
    return runs


def summary_rows(runs: list[tuple[TrainConfig, list[dict]]], cfg: EosConvConfig) -> list[dict]:
    """The summary of each run of :func:`run_metrics` (finished or not: a run short of ``cfg``'s step budget
    is ``interrupted``)."""
    return [
        summary_row(
            t.net.model, t.lr, rows, cfg.hover_tol, cfg.noise_rtol, t.net.seed, cfg.edge_at, run_outcome(rows, t)
        )
        for t, rows in runs
    ]


def _by_net_and_rate(runs: list[tuple[TrainConfig, list[dict]]]) -> dict[tuple[str, float], list[list[dict]]]:
    """Each (model, rate)'s runs, as their diagnosed metrics rows (one list per seed)."""
    groups: dict[tuple[str, float], list[list[dict]]] = {}
    for train, rows in runs:
        groups.setdefault((train.net.model, train.lr), []).append(diagnosed(rows))
    return groups


def _pooled(runs: list[tuple[TrainConfig, list[dict]]]) -> list[tuple[str, float, list[dict]]]:
    """Each (model, rate) with the diagnosed rows of all its seeds' runs, pooled (those with any)."""
    groups = _by_net_and_rate(runs).items()
    return [(model, lr, rows) for (model, lr), each in groups if (rows := [r for seed in each for r in seed])]


def pooled_predictors(runs: list[tuple[TrainConfig, list[dict]]], cfg: EosConvConfig) -> list[dict]:
    """Every predictor's scores and the paired rule (:func:`gdflows.experiments.predictors.table`) per net and
    rate, over the diagnosed steps of all its seeds' runs (:func:`run_metrics`), pooled."""
    return [
        {"model": model, "lr": lr} | r
        for model, lr, rows in _pooled(runs)
        for r in predictors.table(rows, cfg.noise_rtol)
    ]


def pooled_bursts(runs: list[tuple[TrainConfig, list[dict]]], cfg: EosConvConfig) -> list[dict]:
    """Loss rises as events (:func:`gdflows.experiments.bursts.table`) per net and rate, each run's bursts
    counted within it and summed over its seeds."""
    return [
        {"model": model, "lr": lr} | r
        for (model, lr), each in _by_net_and_rate(runs).items()
        for r in bursts.table(each, cfg.noise_rtol)
    ]


def pooled_step_errors(runs: list[tuple[TrainConfig, list[dict]]], cfg: EosConvConfig) -> list[dict]:
    """How close each predictor's rate comes to GD's step (:func:`gdflows.experiments.predictors.step_errors`)
    per net and rate, over the diagnosed steps of all its seeds' runs, pooled."""
    return [
        {"model": model, "lr": lr} | r
        for model, lr, rows in _pooled(runs)
        for r in predictors.step_errors(rows, lr, cfg.noise_rtol)
    ]


def errors_text(errors: list[dict]) -> str:
    """The section on the size of each predictor's step: what the error is, and the table."""
    if not errors:
        return ""
    cells = [{"model": e["model"], "lr": f"{e['lr']:g}"} | c for e, c in zip(errors, predictors.error_cells(errors))]
    return (
        "How close each predictor's rate p comes to the step GD takes, beyond its sign: the relative error "
        "|p - Delta/h| / |Delta/h| on the same steps (Delta = E(theta - h g) - E(theta); gradient flow's rate "
        "is -|g|^2), its median over all steps and over the rises with a 95% order-statistic interval (which "
        "treats the steps as independent, as the intervals above do), and its largest over the rises. Data: "
        "`step_errors.csv`.\n\n" + markdown_table(cells, tuple(cells[0])) + "\n\n"
    )


def bursts_text(events: list[dict]) -> str:
    """The events section: what a burst is, the table, and how many events the step-level counts rest on."""
    if not events:
        return ""
    first = {}
    for e in events:
        first.setdefault((e["model"], e["lr"]), e)
    n_bursts, n_rises = sum(e["bursts"] for e in first.values()), sum(e["rises"] for e in first.values())
    cells = [{"model": e["model"], "lr": f"{e['lr']:g}"} | c for e, c in zip(events, bursts.display(events))]
    return (
        "Loss rises as events (`gdflows.experiments.bursts`): a burst is a run of consecutive scored steps that "
        "rose (bursts never span two runs); a predictor catches it whole when it calls a rise at each of its "
        "steps (95% Wilson interval over the bursts), and a false alarm is a run of consecutive steps where it "
        f"called a rise and GD fell. Over every net and rate, the {n_rises} rise steps came in {n_bursts} "
        f"burst{'s' if n_bursts != 1 else ''}: steps along a run are not independent trials, so the step-level "
        "intervals and the paired rule above are narrower than a count of events would make them. Data: "
        "`bursts.csv`.\n\n" + markdown_table(cells, tuple(cells[0])) + "\n\n"
    )


def _groups(rows: list[dict]) -> dict[tuple[str, float], list[dict]]:
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["lr"]), []).append(r)
    return groups


PF_NAMES = {"PF dE/dt": "the PF's dE/dt", "PF over one step": "the PF's own one-step prediction"}


def _pf_verdict(pooled: list[dict], model: str, lr: float, name: str = "PF dE/dt"):
    """The pooled row of the PF predictor ``name`` (with its paired verdict against every baseline) on a net
    and rate, or None."""
    found = [p for p in pooled if (p["model"], p["lr"], p["predictor"]) == (model, lr, name)]
    return found[0] if found else None


def _pf_sentence(name: str, pf: dict) -> str:
    verdict = pf["beats_baselines"]
    said = {
        "yes": "predicts the loss change's sign better than every baseline",
        "no": "does not predict the loss change's sign better than every baseline",
        "inconclusive": "is not shown to predict the loss change's sign better than every baseline (inconclusive)",
    }[verdict.answer]
    return (
        f" Over the {pf['steps']} pooled steps above noise, {PF_NAMES[name]} {said}: accuracy {pf['accuracy']:.1%} "
        f"[{pf['accuracy_low']:.1%}, {pf['accuracy_high']:.1%}] ({verdict.why})."
    )


def group_prose(
    model: str,
    lr: float,
    runs: list[dict],
    pf: dict | None,
    tol: float = 0.1,
    edge_at: float = 0.98,
    pf_step: dict | None = None,
) -> str:
    """A paragraph on one net and rate: its seeds' sharpness against 2/h, then the pooled sign verdicts of the
    PF's dE/dt and (where computed) of its own one-step prediction."""
    head = f"**{NAMES[model]}, h = {lr:g}** ({len(runs)} seed{'s' if len(runs) != 1 else ''})."
    start = ", ".join(f"{r['hl0_start']:.2f}" for r in runs if "hl0_start" in r)
    reached = [r for r in runs if r.get("reached_edge") == "yes"]
    text = f"{head} h lambda_0 at initialisation: {start or 'not diagnosed'}."
    if reached:
        bands = ", ".join(f"{r['band_mean']:.3f} (max {r['band_max']:.3f})" for r in reached)
        text += (
            f" {len(reached)} of {len(runs)} runs reached the edge (h lambda_0 >= {2 * edge_at:g}), first at "
            f"steps {', '.join(str(r['first_at_edge']) for r in reached)}; after it, |lambda_0 / (2/h) - 1| "
            f"averaged {bands} over {', '.join(str(r['at_edge']) for r in reached)} diagnoses, of which "
            f"{', '.join(str(r['above_2h']) for r in reached)} had lambda_0 >= 2/h."
        )
        below_2h = sum(r["above_2h"] == 0 for r in reached)
        if below_2h:
            text += f" {below_2h} of them never crossed 2/h there (lambda_0 below it at every diagnosis at the edge)."
    else:
        text += f" No run reached the edge (h lambda_0 >= {2 * edge_at:g}) within the step budget."
    below = [r for r in runs if r.get("reached_edge") == "no" and "hl0_max" in r]
    if below and reached:
        text += f" The other {len(below)} stayed below it:"
    if below:
        peaks = ", ".join(
            f"{r['hl0_max']:.2f} at step {r['hl0_max_at']} (then {r['hl0_end']:.2f}, {r['outcome']})" for r in below
        )
        text += f" h lambda_0 peaked at {peaks}."
    edge = sum(r.get("edge_of_stability") == "yes" for r in runs)
    text += f" Edge of stability (rose from below, then within {tol:.0%} of 2/h from the edge on): {edge}"
    text += f" of {len(runs)}."
    for name, row in (("PF dE/dt", pf), ("PF over one step", pf_step)):
        text += _pf_sentence(name, row) if row is not None else ""
    return text


def summary_prose(rows: list[dict], pooled: list[dict], tol: float = 0.1, edge_at: float = 0.98) -> str:
    """What the runs showed, a paragraph per net and rate from its verdicts (``tol``: the edge's band), then
    the count."""
    lines = [
        group_prose(
            m, lr, runs, _pf_verdict(pooled, m, lr), tol, edge_at, _pf_verdict(pooled, m, lr, "PF over one step")
        )
        for (m, lr), runs in _groups(rows).items()
    ]
    reached = sum(r["reached_edge"] == "yes" for r in rows)
    edge = sum(r.get("edge_of_stability") == "yes" for r in rows)
    creeping = sum(r.get("edge_of_stability") == "yes" and r["above_2h"] == 0 for r in rows)
    pfs = [p for p in pooled if p["predictor"] == "PF dE/dt"]
    answers = [p["beats_baselines"].answer for p in pfs]
    lines.append(
        f"Overall: the sharpness reached the edge (lambda_0 >= {edge_at:g} x 2/h) in {reached} of {len(rows)} runs, "
        f"and rose to 2/h from below and hovered there (edge of stability) in {edge}"
        + (f" ({creeping} of them without ever crossing 2/h)" if creeping else "")
        + "; pooled over seeds, the PF's "
        f"dE/dt beat every baseline (the one-step quadratic model, gradient flow, the majority sign) for "
        f"{answers.count('yes')} of {len(pfs)} net-rate pairs, did not for {answers.count('no')}, and "
        f"{answers.count('inconclusive')} were inconclusive."
    )
    steps = [p["beats_baselines"].answer for p in pooled if p["predictor"] == "PF over one step"]
    if steps:
        lines[-1] += (
            f" The PF's own one-step prediction did for {steps.count('yes')} of {len(steps)}, did not for "
            f"{steps.count('no')}, and {steps.count('inconclusive')} were inconclusive."
        )
    return "\n\n".join(lines)


def sharpness_figure(path: Path, runs: list[tuple[TrainConfig, list[dict]]], rows: list[dict]) -> Path:
    """lambda_0 against the step for every run (:func:`run_metrics`; ``rows``: their summaries), one panel per
    net, with each rate's 2/h; the title from the verdicts."""
    metrics = {(t.net.model, t.lr, t.net.seed): m for t, m in runs}
    groups = _groups(rows)
    models = list(dict.fromkeys(m for m, _ in groups))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, model in zip(axes[0], models):
        rates = [lr for m, lr in groups if m == model]
        for color, lr in zip(colors, rates):
            for i, r in enumerate(groups[(model, lr)]):
                diag = diagnosed(metrics[(model, lr, r["seed"])])
                steps = [float(d["step"]) for d in diag]
                label = f"h = {lr:g}" if i == 0 else None
                ax.plot(steps, [float(d["lambda_0"]) for d in diag], color=color, lw=1, label=label)
            ax.axhline(2 / lr, color=color, ls="--", lw=1)
        edge = sum(r.get("edge_of_stability") == "yes" for lr in rates for r in groups[(model, lr)])
        runs = sum(len(groups[(model, lr)]) for lr in rates)
        title = f"{NAMES[model]}: lambda_0 rose to its 2/h (dashed) and hovered in {edge} of {runs} runs"
        ax.set(title=title, xlabel="GD step n", ylabel="lambda_0")
        ax.legend(fontsize=8)
    return save(fig, path)


def _score_bars(ax, pooled: list[dict], groups: list, names: list, score: str) -> None:
    """Each predictor's pooled ``score`` with its 95% interval as bars, per net and rate (a gap where the
    score is undefined, e.g. a recall on rises where no step rose)."""
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        found = [
            next((p for p in pooled if (p["model"], p["lr"]) == g and p["predictor"] == name), None) for g in groups
        ]
        value, low, high = (
            np.array([float(p[f"{score}{end}"]) if p else np.nan for p in found]) for end in ("", "_low", "_high")
        )
        x = np.arange(len(groups)) + width * (i - (len(names) - 1) / 2)
        ok = np.isfinite(value)
        errors = np.array([value - low, high - value])[:, ok]
        ax.bar(x[ok], value[ok], width, yerr=errors, capsize=2, label=name, color=f"C{i}")
    ax.set_xticks(np.arange(len(groups)), [f"{NAMES[m]}\nh = {lr:g}" for m, lr in groups])
    ax.set_xlim(-0.5, len(groups) - 0.5)


def sign_figure(path: Path, pooled: list[dict]) -> Path:
    """Each predictor's pooled accuracy (top) and recall on loss rises (bottom) with their 95% intervals, per
    net and rate; the title from the verdicts."""
    groups = list(dict.fromkeys((p["model"], p["lr"]) for p in pooled))
    names = list(dict.fromkeys(p["predictor"] for p in pooled))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.5, 2.2 * len(groups)), 7.5), sharex=True)
    _score_bars(top, pooled, groups, names, "accuracy")
    top.set(ylabel="steps with the sign right", ylim=(0, 1.05))
    _score_bars(bottom, pooled, groups, names, "rise_recall")
    bottom.set(ylabel="loss rises predicted", ylim=(0, 1.05))
    rises = {(p["model"], p["lr"]) for p in pooled if not np.isnan(float(p["rise_recall"]))}
    for j, g in enumerate(groups):
        if g not in rises:
            bottom.text(j, 0.5, "no rise", ha="center", va="center", fontsize=8, color="0.4")
    beats = sum(p["beats_baselines"].answer == "yes" for p in pooled if p["predictor"] == "PF dE/dt")
    fig.suptitle(
        f"The PF's dE/dt beat every baseline for {beats} of {len(groups)} net-rate pairs\n"
        "(shares of the pooled steps, with 95% intervals)"
    )
    top.legend(fontsize=7, loc="lower right")
    return save(fig, path)


def predictor_cells(pooled: list[dict]) -> list[dict]:
    """The pooled predictor rows as report cells (net, rate, then :func:`gdflows.experiments.predictors.display`)."""
    cells = predictors.display(pooled)
    return [{"model": p["model"], "lr": f"{p['lr']:g}"} | c for p, c in zip(pooled, cells)]


def predictor_csv_rows(pooled: list[dict]) -> list[dict]:
    """The pooled predictor rows as CSV rows (verdicts as their answers)."""
    out = []
    for p in pooled:
        row = {k: v for k, v in p.items() if k not in ("versus", "beats_baselines")}
        if "beats_baselines" in p:
            row["beats_baselines"] = p["beats_baselines"].answer
            row |= {f"vs {b}": v.answer for b, v in p["versus"].items()}
        out.append(row)
    return out


def design_text(cfg: EosConvConfig) -> str:
    """The sample size the design was decided on, and what each net and rate pools."""
    n = predictors.steps_needed(DESIGN_GAIN, DESIGN_DISCORDANT, power=DESIGN_POWER)
    return (
        f"Sample size, decided before the runs: the paired rule detects a {DESIGN_GAIN:.0%} accuracy gain over a "
        f"baseline, with {DESIGN_DISCORDANT:.0%} of steps discordant, at {DESIGN_POWER:.0%} power from {n} steps "
        f"(`predictors.steps_needed`); so each net and rate pools its {len(cfg.seeds)} seeds' diagnoses (each run "
        f"aims at 100 or more at the edge, diagnosed every {cfg.edge_every} steps there), and a single run's "
        "verdict is underpowered by design."
    )


def markdown(
    cfg: EosConvConfig,
    rows: list[dict],
    pooled: list[dict],
    prefix: str = "",
    cpu: str = "",
    events=(),
    errors=(),
) -> str:
    """The design, the summary and predictor tables, the rises as events (``events``: :func:`pooled_bursts`),
    the predictors' step sizes (``errors``: :func:`pooled_step_errors`), the prose and the figures (image
    links ``prefix + figures/...``)."""
    cfg = cfg.resolved()
    net = cfg.net
    rates = "; ".join(f"{NAMES[m]} h = {', '.join(f'{lr:g}' for lr in getattr(cfg, f'{m}_lrs'))}" for m in cfg.models)
    return (
        f"Full-batch GD, {net.activation} nets, {net.loss} loss, {net.n_train} {net.dataset} training images "
        f"(pooled by {net.downsample}), width {net.width}, {net.dtype}; {rates}; seeds "
        f"{', '.join(map(str, cfg.seeds))}; up to {cfg.steps} steps (a run ends after {cfg.edge_diagnoses} diagnoses "
        f"from the first at the edge), diagnosed every {cfg.log_every} steps until "
        f"lambda_0 first reached {cfg.edge_at:g} x 2/h and every {cfg.edge_every} from then on, warm-started "
        f"(the top {cfg.k} eigenpair(s), the PF field at tolerance {cfg.tol:g}).{cpu}\n\n"
        + design_text(cfg)
        + "\n\n"
        + markdown_table(rows, SUMMARY_COLUMNS, SUMMARY_FORMAT)
        + "\n\n"
        "hl0: h lambda_0 at the first and last diagnosis; first_at_edge: the first diagnosed step with lambda_0 >= "
        f"{cfg.edge_at:g} x 2/h; at_edge: the diagnoses from there on, over which band_mean and band_max are "
        "the mean and max of |lambda_0 / (2/h) - 1|; above_2h: those with lambda_0 >= 2/h (0: lambda_0 stayed "
        "below 2/h there, not oscillating around it); edge_of_stability: lambda_0 below the edge at first and "
        f"within {cfg.hover_tol:.0%} of 2/h from first_at_edge on (band_max <= {cfg.hover_tol:g}, at_edge >= "
        f"{MIN_AT_EDGE}); sign: the run's "
        "own paired rule "
        "(underpowered, see above); verdict: both, from `gdflows.experiments.verdicts`. Data: `summary.csv`.\n\n"
        "Every predictor of the loss change's sign, each net and rate's seeds pooled, on the steps whose "
        f"change exceeds {cfg.noise_rtol:g} E_n (95% Wilson intervals; rises are the events the PF claims to "
        "explain; data: `predictors.csv`):\n\n"
        + markdown_table(predictor_cells(pooled), ("model", "lr", *predictors.DISPLAY_COLUMNS))
        + "\n\n"
        "The PF beats every baseline when an exact paired (McNemar) test against each of the one-step quadratic "
        f"model, gradient flow and the majority sign has p <= {predictors.ALPHA:g}; it does not when a "
        f"{predictors.MIN_GAIN:.0%} accuracy gain over one of them is excluded; else inconclusive.\n\n"
        + bursts_text(list(events))
        + errors_text(list(errors))
        + _unfinished(rows, cfg)
        + summary_prose(rows, pooled, cfg.hover_tol, cfg.edge_at)
        + "\n\n"
        + f"![sharpness]({prefix}figures/sharpness.png)\n![signs]({prefix}figures/signs.png)\n"
    )


def _unfinished(rows: list[dict], cfg: EosConvConfig) -> str:
    """A note naming the runs that stopped before their last step (empty when every run completed)."""
    stopped = [f"{NAMES[r['model']]} h = {r['lr']:g} seed {r['seed']}" for r in rows if r["outcome"] == "interrupted"]
    missing = len(train_configs(cfg)) - len(rows)
    if not stopped and not missing:
        return ""
    text = f"**Not every run finished**: {', '.join(stopped) or 'none'} stopped before step {cfg.steps}"
    text += " (their rows cover the steps they reached)" if stopped else ""
    return text + (f"; {missing} run(s) did not start" if missing else "") + ".\n\n"


class Tables(NamedTuple):
    """The report's data: the runs (:func:`run_metrics`), one summary row per run, the predictors pooled per
    net and rate, the bursts, the predictors' step errors."""

    runs: list[tuple[TrainConfig, list[dict]]]
    rows: list[dict]
    pooled: list
    events: list[dict]
    errors: list[dict]


def tables(folder: Path, cfg: EosConvConfig) -> Tables | None:
    """The report's tables from the runs in ``folder`` (None while no run has a metrics row yet)."""
    runs = run_metrics(folder, cfg)
    if not runs:
        return None
    return Tables(
        runs,
        summary_rows(runs, cfg),
        pooled_predictors(runs, cfg),
        pooled_bursts(runs, cfg),
        pooled_step_errors(runs, cfg),
    )


def write_report(run: Run, cfg: EosConvConfig) -> Tables | None:
    """summary.csv, predictors.csv, bursts.csv, step_errors.csv, figures/ and REPORT.md from the runs in
    ``run`` (nothing while no run has a metrics row yet); the tables."""
    found = tables(run.path, cfg)
    if found is None:
        return None
    runs, rows, pooled, events, errors = found
    run.write_table("summary", rows)
    run.write_table("predictors", predictor_csv_rows(pooled))
    run.write_table("bursts", events)
    run.write_table("step_errors", errors)
    sharpness_figure(run.figure_path("sharpness.png"), runs, rows)
    sign_figure(run.figure_path("signs.png"), pooled)
    run.write_text(
        "REPORT.md",
        "# gdflows eos-conv: the edge of stability on conv nets\n\nComputed by `gdflows eos-conv` with the "
        "flags recorded in `config.json`.\n\n"
        + markdown(cfg, rows, pooled, cpu=cpu_text(run), events=events, errors=errors),
    )
    return found


def _report_so_far(run: Run, cfg: EosConvConfig) -> str:
    """Write the report from the steps the runs reached (the interrupted ones marked so); a clause naming it
    (empty when no run has a metrics row yet)."""
    if write_report(run, cfg) is None:
        return ""
    return f"; {run.file('REPORT.md')} reports the steps reached so far"


def run(cfg: EosConvConfig) -> Path:
    """``gdflows eos-conv``: each train run (resumable, a finished one skipped; its time kept in
    ``timings.csv``), then the summary and report. Ctrl-C writes the report from the steps reached (the
    interrupted run marked so) before it stops; the same command resumes."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    configs = train_configs(cfg)
    for train in configs:  # every sub-config, and missing data, refused before any work
        train.validate()
    resolved = cfg.resolved()
    net = resolved.net
    load_dataset(net.dataset, data_dir=net.data_dir, n_train=net.n_train, n_test=net.n_test)
    run = folder.create()
    try:
        for train in configs:
            with timed(run, train.out.name):
                train.run()
    except KeyboardInterrupt as stop:
        said = str(stop) or f"interrupted: rerun the same command to resume {run.path}"
        raise RunInterrupted(said + _report_so_far(run, cfg)) from None
    write_report(run, cfg)
    folder.finish()
    print(f"report: {run.file('REPORT.md')}")
    return run.path
