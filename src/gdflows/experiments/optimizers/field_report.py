"""REPORT.md, tables and figures of ``compare-optimizers`` at scale, read from its CSV files."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gdflows.experiments.optimizers import tables  # noqa: E402
from gdflows.experiments.optimizers.report import sections  # noqa: E402
from gdflows.experiments.optimizers.spread import FAILED, LOSS, TIE, WIN, tally, versus  # noqa: E402
from gdflows.experiments.report import markdown  # noqa: E402
from gdflows.experiments.report.plots import save_fitted  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402
from gdflows.optim import DAL_FAMILIES  # noqa: E402

BUDGETS = {"equal epochs": "", "equal FLOPs": "_at_F"}  # the verdicts' budgets (wall-clock: indicative, table only)
HIGHER = {"test_acc": True, "test_loss": False}
LABEL = {"test_acc": "test accuracy", "test_loss": "test loss"}


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``mean +- std`` (``-`` when there is no value)."""
    return "-" if not math.isfinite(mean) else f"{mean:.{digits}f} +- {std:.{digits}f}"


def _triple(row, metric: str, suffix: str) -> tuple:
    return row[metric + suffix], row[f"{metric}{suffix}_std"], row["failed"] > 0


def outcomes(summary, model: str, dal: dict, metric: str, suffix: str) -> dict:
    """The field method names per answer of ``dal`` against each, on ``metric`` at one budget."""
    out = {WIN: [], TIE: [], LOSS: [], FAILED: []}
    for other in tables.field(summary, model):
        out[versus(_triple(dal, metric, suffix), _triple(other, metric, suffix), HIGHER[metric])].append(
            other["method"]
        )
    return out


def verdict_lines(summary) -> list[str]:
    """One line per (model, budget, DAL method) on test accuracy, and a tally per (model, budget, metric)."""
    lines = []
    for model in sorted({s["model"] for s in summary}):
        for budget, suffix in BUDGETS.items():
            for metric in HIGHER:
                counts = {WIN: 0, TIE: 0, LOSS: 0, FAILED: 0}
                for dal in tables.dal_rows(summary, model):
                    o = outcomes(summary, model, dal, metric, suffix)
                    counts = {k: counts[k] + v for k, v in tally(w for w in o for _ in o[w]).items()}
                    if metric == "test_acc":
                        lines.append(
                            f"- {model}, {budget}: {dal['method']} "
                            f"({pm(*_triple(dal, metric, suffix)[:2])}) beats {', '.join(o[WIN]) or 'none'}; "
                            f"ties {', '.join(o[TIE]) or 'none'}; loses to {', '.join(o[LOSS]) or 'none'}"
                            + (f"; not compared (failed): {', '.join(o[FAILED])}." if o[FAILED] else ".")
                        )
                lines.append(
                    f"- **{model}, {budget}, {LABEL[metric]}: DAL variants against the field: "
                    f"{counts[WIN]} wins, {counts[TIE]} ties, {counts[LOSS]} losses "
                    f"({counts[FAILED]} pairs with a failed method not counted).**"
                )
    return lines


def _shown(summary, model: str) -> list[dict]:
    return tables.field(summary, model) + tables.dal_rows(summary, model)


def table_rows(summary) -> list[dict]:
    """The main table: per model, tuned SGD, the field and the DAL methods."""
    out = []
    for model in sorted({s["model"] for s in summary}):
        sgd = tables.tuned_sgd(summary, model)
        for s in _shown(summary, model):
            out.append(
                {
                    "model": model,
                    "method": s["method"] + (" (tuned SGD)" if s is sgd else ""),
                    "failed": f"{s['failed']}/{s['seeds']}",
                    "diverged": f"{s['diverged']}/{s['seeds']}",
                    "test acc": pm(s["test_acc"], s["test_acc_std"]),
                    "test loss": pm(s["test_loss"], s["test_loss_std"]),
                    "test acc at F": pm(s["test_acc_at_F"], s["test_acc_at_F_std"]),
                    "test loss at F": pm(s["test_loss_at_F"], s["test_loss_at_F_std"]),
                    "epochs at F": pm(s["epoch_at_F"], s["epoch_at_F_std"], 2),
                    "test acc at T": pm(s["test_acc_at_T"], s["test_acc_at_T_std"]),
                    "test loss at T": pm(s["test_loss_at_T"], s["test_loss_at_T_std"]),
                    "epochs at T": pm(s["epoch_at_T"], s["epoch_at_T_std"], 2),
                    "ms/step": f"{s['ms_per_step']:.1f}",
                    "MFLOP/step": f"{s['flops_per_step'] / 1e6:.1f}",
                    "FLOPs / SGD": f"{s['flops_per_step'] / sgd['flops_per_step']:.2f}" if sgd else "-",
                }
            )
    return out


def sweep_rows(summary) -> list[dict]:
    return [
        {
            "model": s["model"],
            "method": s["method"],
            "failed": f"{s['failed']}/{s['seeds']}",
            "diverged": f"{s['diverged']}/{s['seeds']}",
            "train loss": pm(s["train_loss"], s["train_loss_std"], 4),
            "test acc": pm(s["test_acc"], s["test_acc_std"]),
        }
        for s in summary
        if s["family"] == "gd"
    ]


def flops_axis(ax, budget: float, title: str) -> None:
    """An axis of FLOPs spent (XLA's cost analysis) with the budget F dotted (when finite)."""
    if math.isfinite(budget):
        ax.axvline(budget, color="k", lw=0.8, ls=":", label="F")
    ax.set(xlabel="FLOPs spent (XLA's cost analysis)", title=title)


def figures(run: Run, summary, curves) -> list[str]:
    """Per model: test accuracy against epochs and against FLOPs spent (seed 0), the budget F marked."""
    runs = tables.curves_by_run(curves)
    names = []
    for model in sorted({s["model"] for s in summary}):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
        for i, s in enumerate(_shown(summary, model)):
            points = runs.get((model, s["method"], "0"), [])
            style = {"color": f"C{i % 10}", "ls": "-" if s["family"] in DAL_FAMILIES else "--", "lw": 1.2}
            acc = [tables.num(p["test_acc"]) for p in points]
            axes[0].plot([tables.num(p["epoch"]) for p in points], acc, label=s["method"], **style)
            axes[1].plot([tables.num(p["step"]) * s["flops_per_step"] for p in points], acc, **style)
        budget = next(s["budget_flops"] for s in summary if s["model"] == model)
        flops_axis(axes[1], budget, f"{model}: equal FLOPs (F dotted)")
        axes[0].set(xlabel="epoch", ylabel="test accuracy", title=f"{model}: equal epochs (seed 0)")
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(fontsize=7, ncol=2)
        name = f"test_acc_{model}.png"
        save_fitted(fig, run.figure_path(name))
        names.append(name)
    return names


def write(run: Run, cfg, plan) -> None:
    """summary.csv, table.csv, table.md, the figures and REPORT.md of the conv-net comparison."""
    (net, *_), (batch, *_) = plan.nets, plan.regimes.values()
    rows = read_csv(run.file("results.csv"))
    curves = read_csv(run.file("curves.csv"))
    summary = tables.summarise(rows, curves, plan.n_test, plan.classes)
    budgets = tables.budget(summary)
    run.write_table("summary", summary)
    main = table_rows(summary)
    run.write_table("table", main)
    table = markdown.markdown_table(main, list(main[0]) if main else [])
    run.write_text("table.md", table + "\n")
    names = figures(run, summary, curves)
    sweep_table = sweep_rows(summary)
    sweep = markdown.markdown_table(sweep_table, list(sweep_table[0]) if sweep_table else [])
    sizes = ", ".join(f"{m} ({next(r['params'] for r in rows if r['model'] == m)} parameters)" for m in budgets)
    text = [
        "# compare-optimizers: DAL against the field",
        "",
        f"Fashion-MNIST, {net.n_train or 'all'} training / {plan.n_test or 'all'} test images, pooled "
        f"{net.downsample}x; nets {sizes}; {plan.loss}, {plan.dtype}; batch {batch}, "
        f"{plan.epochs} epochs, {cfg.seeds} seeds (the same initialisation and batches for every method of a seed).",
        f"DAL-p: h = min(2 / (|Hg|/|g|)^p, {plan.max_lr:g}), by HVP or finite differences; CDAT at sigma = 2; "
        f"Polyak (f_min = 0) capped at {plan.max_lr:g}. Fixed rates: SGD sweep {', '.join(map(str, plan.lrs))}; "
        f"momentum {plan.rates['momentum']:g} (beta 0.9); Adam {plan.rates['adam']:g}; "
        f"schedule-free SGD {plan.rates['schedule_free']:g}.",
        "Tuned SGD: the sweep's rate with the lowest mean final training loss and no failed seed "
        "(the test set plays no part in the choice).",
        "Entries are mean +- sample std over seeds, of the runs that did not diverge. 'at F': read off each "
        "run's curve at the last evaluation logged within the model's FLOP budget F, tuned SGD's FLOPs for the "
        "epochs (XLA's cost analysis of one step times the steps): "
        + ", ".join(f"{m} F = {f:.3g}" for m, f in tables.flop_budget(summary).items())
        + ". 'at T' (indicative, not a verdict: one timing per run, on a machine shared with other jobs): the same "
        "at tuned SGD's mean training time T, "
        + ", ".join(f"{m} T = {t:.1f} s" for m, t in budgets.items())
        + ", evaluations and compilation excluded.",
        "Verdicts: a beats b when its mean is better by more than sqrt(s_a^2 + s_b^2); otherwise a tie. "
        "A failed seed (diverged, test accuracy at chance: the lower end of its 95% Wilson interval at or below "
        f"1/{plan.classes}, or a final test loss at or above its starting one) fails its method, which is then "
        "compared with no one: its pairs are listed as failed and counted as nobody's win or loss.",
        *sections(verdict_lines(summary), table, names, ("The SGD sweep", sweep)),
    ]
    run.write_text("REPORT.md", "\n".join(text))
