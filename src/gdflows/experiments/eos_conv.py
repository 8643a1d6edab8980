r"""``gdflows eos-conv``: the edge of stability on conv nets, read through the PF (docs/theory.md, section 7).

Full-batch GD on a VGG-style and a ResNet-style net (no normalisation layers,
a holomorphic activation) on a class-balanced Fashion-MNIST subset, at two
learning rates h each. Every run is a ``gdflows train`` run (its config built
by :func:`train_configs`, its folder ``<out>/<model>_lr<h>``), so there is one
training loop and one set of diagnostics: every ``log_every`` steps the top-k
lambda_i, sc_i, c_i and the PF's

.. math:: \frac{dE}{dt} = \sum_i sc_i\, c_i^2 \quad (\text{the whole spectrum, through the PF field})

against the observed change E(theta_n - h g_n) - E(theta_n). Each run is then
summarised from its metrics rows (:func:`summary_row`): h lambda_0 at the start
and at the end, the first logged step at the edge (lambda_0 >= (1 - tol) 2/h),
Re(sc_0) over the last third, and :func:`gdflows.experiments.eos.eos_verdicts`
(progressive sharpening then hovering at 2/h; the PF's sign agreement against
its baselines: the one-step quadratic model, gradient flow, the majority sign). The report's prose and figure titles
follow those verdicts.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gdflows.data import load_dataset  # noqa: E402
from gdflows.experiments.configs import EosConvConfig, TrainConfig, changed_flags  # noqa: E402
from gdflows.experiments.eos import diagnosed, eos_verdicts, outcome, verdict_prose  # noqa: E402
from gdflows.experiments.report.markdown import markdown_table  # noqa: E402
from gdflows.experiments.report.plots import finish, save  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402

__all__ = ["EosConvConfig", "run", "train_configs", "summary_row", "summary_rows", "summary_prose", "markdown"]

NAMES = {"vgg": "VGG", "resnet": "ResNet"}
SUMMARY_COLUMNS = (
    "model",
    "lr",
    "outcome",
    "hl0_start",
    "hl0_end",
    "reached_edge",
    "first_at_edge",
    "steps_above_noise",
    "sign_agreement",
    "quadratic_agreement",
    "majority_baseline",
    "sign",
    "re_sc0_last_third",
    "verdict",
)
SUMMARY_FORMAT = {
    "lr": "{:g}",
    "hl0_start": "{:.3f}",
    "hl0_end": "{:.3f}",
    "sign_agreement": "{:.1%}",
    "quadratic_agreement": "{:.1%}",
    "majority_baseline": "{:.1%}",
    "re_sc0_last_third": "{:+.3f}",
}


def run_name(model: str, lr: float) -> str:
    return f"{model}_lr{lr:g}"


def _shared(cfg, cls, **given):
    """``cls(**given)`` with every other field of ``cls`` that ``cfg`` also has taken from ``cfg``."""
    names = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(cfg)}
    return cls(**({name: getattr(cfg, name) for name in names} | given))


def train_configs(cfg: EosConvConfig) -> list[TrainConfig]:
    """One full-batch ``gdflows train`` config per (model, rate), each into its sub-folder of ``cfg.out``
    (the net is ``cfg.net`` with that model; the diagnosis settings are ``cfg``'s fields of the same names)."""
    cfg = cfg.resolved()
    configs = []
    for model in cfg.models:
        net = dataclasses.replace(cfg.net, model=model)
        for lr in getattr(cfg, f"{model}_lrs"):
            configs.append(_shared(cfg, TrainConfig, out=Path(cfg.out) / run_name(model, lr), net=net, lr=lr))
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


def _first_at_edge(rows, tol: float) -> int | None:
    """The first logged step with lambda_0 >= (1 - tol) 2/h (None: never)."""
    for r in rows:
        if float(r["lambda_0"]) >= (1 - tol) * float(r["two_over_h"]):
            return int(float(r["step"]))
    return None


def summary_row(model: str, lr: float, rows, tol: float = 0.1, noise_rtol: float = 1e-6) -> dict:
    """One run's line of the summary, from its metrics rows (dicts; strings or numbers).

    ``reached_edge``: some logged lambda_0 >= (1 - tol) 2/h; ``first_at_edge``: the first
    such step; ``re_sc0_last_third``: the mean Re(sc_0) over the last third of the run;
    the rest from :func:`~gdflows.experiments.eos.eos_verdicts` (empty with fewer than 3 diagnoses).
    """
    diag = diagnosed(rows)
    row = {"model": model, "lr": lr, "outcome": outcome(rows), "logged": len(diag)}
    if len(diag) < 3:
        return row | {"reached_edge": "no", "verdict": f"no: {len(diag)} diagnosed steps (fewer than 3)"}
    v = eos_verdicts(diag, tol, noise_rtol)
    steps = np.array([float(r["step"]) for r in diag])
    last = steps >= 2 * steps[-1] / 3
    first = _first_at_edge(diag, tol)
    return row | {
        "hl0_start": lr * float(diag[0]["lambda_0"]),
        "hl0_end": lr * float(diag[-1]["lambda_0"]),
        "reached_edge": "no" if first is None else "yes",
        "first_at_edge": "" if first is None else first,
        "steps_above_noise": v["steps_above_noise"],
        "sign_agreement": v["sign_agreement"],
        "quadratic_agreement": v["quadratic_agreement"],
        "majority_baseline": v["majority_baseline"],
        "sign": v["sign"].answer,
        "re_sc0_last_third": float(np.mean([float(r["sc_0_re"]) for r, at in zip(diag, last) if at])),
        "edge_of_stability": v["edge_of_stability"],
        "verdict": str(v["verdict"]),
        "prose": verdict_prose(v),
    }


def summary_rows(folder: Path, cfg: EosConvConfig) -> list[dict]:
    """The summary of every run of ``cfg`` that has metrics in ``folder`` (finished or not)."""
    rows = []
    for train in train_configs(cfg):
        metrics = Path(folder) / train.out.name / "metrics.csv"
        if metrics.is_file():
            rows.append(summary_row(train.net.model, train.lr, read_csv(metrics), cfg.hover_tol, cfg.noise_rtol))
    return rows


def summary_prose(rows: list[dict], tol: float = 0.1) -> str:
    """What the runs showed, a paragraph per run from its verdicts (``tol``: the edge's band), then the count."""
    lines = []
    for r in rows:
        head = f"**{NAMES[r['model']]}, h = {r['lr']:g}.**"
        if "prose" not in r:
            lines.append(f"{head} Verdict: **{r['verdict']}**.")
            continue
        went = f"h lambda_0 went from {r['hl0_start']:.2f} to {r['hl0_end']:.2f}"
        reach = (
            f"{went} and first reached the edge (h lambda_0 >= {2 * (1 - tol):g}) at step {r['first_at_edge']}"
            if r["reached_edge"] == "yes"
            else f"{went} and never reached the edge (h lambda_0 >= {2 * (1 - tol):g}; no edge of stability in "
            "this run: it needs more steps or a larger rate)"
        )
        lines.append(f"{head} {reach}. {r['prose']}")
    reached = sum(r["reached_edge"] == "yes" for r in rows)
    edge = sum(bool(r.get("edge_of_stability")) for r in rows)
    signs = sum(str(r.get("sign", "")) == "yes" for r in rows)
    lines.append(
        f"Overall: the sharpness reached the edge (lambda_0 >= {1 - tol:g} x 2/h) in {reached} of {len(rows)} runs, "
        f"and rose to 2/h from below and hovered there (edge of stability) in {edge}; the PF's dE/dt beat every "
        f"baseline (the one-step quadratic model, gradient flow, the majority sign) in {signs} of {len(rows)}."
    )
    return "\n\n".join(lines)


def sharpness_figure(path: Path, folder: Path, rows: list[dict]) -> Path:
    """h lambda_0 against the step for every run, with the edge h lambda_0 = 2; the title from the verdicts."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        diag = diagnosed(read_csv(Path(folder) / run_name(r["model"], r["lr"]) / "metrics.csv"))
        steps = [float(d["step"]) for d in diag]
        ax.plot(steps, [r["lr"] * float(d["lambda_0"]) for d in diag], label=f"{NAMES[r['model']]}, h = {r['lr']:g}")
    ax.axhline(2.0, color="black", ls="--", lw=1, label="edge: h lambda_0 = 2")
    title = f"h lambda_0 reached the edge in {sum(r['reached_edge'] == 'yes' for r in rows)} of {len(rows)} runs"
    return finish(fig, ax, path, title, "GD step n", "h lambda_0")


def sign_figure(path: Path, rows: list[dict]) -> Path:
    """The PF's sign agreement beside its baselines' (the one-step quadratic model, the majority sign), per run."""
    rows = [r for r in rows if "sign_agreement" in r]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.arange(len(rows))
    bars = {"sign_agreement": "PF dE/dt", "quadratic_agreement": "one-step quadratic model"}
    bars["majority_baseline"] = "always the majority sign"
    for i, (key, label) in enumerate(bars.items()):
        ax.bar(x + 0.27 * (i - 1), [r.get(key, np.nan) for r in rows], 0.27, label=label)
    ax.set_xticks(x, [f"{NAMES[r['model']]}\nh = {r['lr']:g}" for r in rows])
    beats = sum(r["sign"] == "yes" for r in rows)
    title = f"The PF beat every baseline in {beats} of {len(rows)} runs"
    ax.set(title=title, ylabel="share of steps with the sign right", ylim=(0, 1.05))
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


def markdown(cfg: EosConvConfig, rows: list[dict], prefix: str = "") -> str:
    """The summary table, the prose and the figures (image links ``prefix + figures/...``)."""
    cfg = cfg.resolved()
    net = cfg.net
    runs = ", ".join(f"`{run_name(r['model'], r['lr'])}/`" for r in rows)
    return (
        f"Full-batch GD, {net.activation} nets, {net.loss} loss, {net.n_train} {net.dataset} training images "
        f"(pooled by {net.downsample}), width {net.width}, {net.dtype}, {cfg.steps} steps, diagnosed every "
        f"{cfg.log_every} steps (the top {cfg.k} eigenpair(s), the PF field at tolerance {cfg.tol:g}).\n\n"
        + markdown_table(rows, SUMMARY_COLUMNS, SUMMARY_FORMAT)
        + "\n\n"
        "hl0: h lambda_0 at the first and last diagnosis; reached_edge: some lambda_0 >= "
        f"{1 - cfg.hover_tol:g} x 2/h (first_at_edge: the first such logged step); sign_agreement: "
        "sign(PF dE/dt) = sign(E_(n+1) - E_n) over the steps_above_noise steps whose change exceeds "
        f"{cfg.noise_rtol:g} E_n, beside quadratic_agreement, the one-step quadratic model's, and "
        "majority_baseline, the share always guessing the majority sign gets right (sign: whether the PF beats "
        "every baseline, gradient flow included, by the paired rule of `gdflows.experiments.predictors`: yes, "
        "no, or inconclusive when the steps cannot tell); re_sc0_last_third: mean "
        "Re(sc_0) over the last third (> 0: the loss rises along u_0); verdict: edge of stability and sign, "
        f"from `gdflows.experiments.verdicts`. Each run's metrics, figures and report: {runs}.\n\n"
        + _unfinished(rows, cfg)
        + summary_prose(rows, cfg.hover_tol)
        + "\n\n"
        + f"![sharpness]({prefix}figures/sharpness.png)\n![signs]({prefix}figures/signs.png)\n"
    )


def _unfinished(rows: list[dict], cfg: EosConvConfig) -> str:
    """A note naming the runs that stopped before their last step (empty when every run completed)."""
    stopped = [f"{NAMES[r['model']]} h = {r['lr']:g}" for r in rows if r["outcome"] == "interrupted"]
    missing = len(train_configs(cfg)) - len(rows)
    if not stopped and not missing:
        return ""
    text = f"**Not every run finished**: {', '.join(stopped) or 'none'} stopped before step {cfg.steps}"
    text += " (their rows cover the steps they reached)" if stopped else ""
    return text + (f"; {missing} run(s) did not start" if missing else "") + ".\n\n"


def write_report(run: Run, cfg: EosConvConfig) -> list[dict]:
    """summary.csv, figures/ and REPORT.md from the runs in ``run``."""
    rows = summary_rows(run.path, cfg)
    run.write_table("summary", [{k: v for k, v in r.items() if k != "prose"} for r in rows])
    sharpness_figure(run.figure_path("sharpness.png"), run.path, rows)
    sign_figure(run.figure_path("signs.png"), rows)
    run.write_text(
        "REPORT.md",
        "# gdflows eos-conv: the edge of stability on conv nets\n\nComputed by `gdflows eos-conv` with the "
        "flags recorded in `config.json`.\n\n" + markdown(cfg, rows),
    )
    return rows


def run(cfg: EosConvConfig) -> Path:
    """``gdflows eos-conv``: each train run (resumable, a finished one skipped), then the summary and report."""
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
    for train in configs:
        start, cpu = time.perf_counter(), time.process_time()
        train.run()
        print(
            f"{train.out.name}: {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU "
            "(this process)"
        )
    write_report(run, cfg)
    folder.finish()
    print(f"report: {run.file('REPORT.md')}")
    return run.path
