"""Tables, figures and REPORT.md of ``compare-optimizers``, read from its CSV files.

Method against method is decided on the seeds' spread
(:func:`gdflows.experiments.verdicts.lower`): one method beats another only
where its mean final loss is lower by more than sqrt(s_a^2 + s_b^2), the
seeds' sample standard deviations; closer means are reported as ties.
"""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gdflows.experiments.report import markdown
from gdflows.experiments.report.plots import save_fitted  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402
from gdflows.experiments.verdicts import SeedStats, lower, sample_std  # noqa: E402
from gdflows.optim import DAL_FAMILIES  # noqa: E402

GROUP = ("model", "regime", "method")
KEY = GROUP + ("seed",)
BLOW_UP = 1.0
BASELINE_FAMILIES = ("gd", "polyak", "dog", "prodigy", "momentum", "adam")


def _f(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def blew_up(row, initial_loss: float, factor: float = BLOW_UP) -> bool:
    """Diverged: the loss went non-finite, or ended above ``factor`` x its initial value."""
    final = _f(row["train_loss"])
    return row["diverged"] == "True" or not math.isfinite(final) or final > factor * initial_loss


def _mean(rows, col) -> float:
    return float(np.mean([_f(r[col]) for r in rows])) if rows else math.nan


def summarise(rows, initial_losses: dict) -> list[dict]:
    """Per (model, regime, method): means over the seeds that did not diverge."""
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in GROUP)].append(r)
    out = []
    for key, rs in groups.items():
        ok = [r for r in rs if not blew_up(r, initial_losses[tuple(r[k] for k in KEY)])]
        loss = np.array([_f(r["train_loss"]) for r in ok])
        reached = [_f(r["steps_to_target"]) for r in ok if r["steps_to_target"] not in ("", "None")]
        out.append(
            dict(zip(GROUP, key))
            | {
                "family": rs[0]["family"],
                "lr": rs[0]["lr"],
                "seeds": len(rs),
                "final_loss_mean": float(np.mean(loss)) if ok else math.nan,
                "final_loss_std": sample_std(loss.tolist()),
                "test_acc_mean": _mean(ok, "test_acc"),
                "reached_target": f"{len(reached)}/{len(rs)}",
                "steps_to_target_median": float(np.median(reached)) if reached else math.nan,
                "spikes_mean": float(np.mean([_f(r["spikes"]) for r in rs])),
                "diverged": len(rs) - len(ok),
                "mean_h_last_third": _mean(ok, "mean_h_last_third"),
                "two_over_lambda0_end": _f(next((r["final_two_over_lambda0"] for r in ok if r["seed"] == "0"), "")),
                "ms_per_step": float(np.mean([_f(r["ms_per_step"]) for r in rs])),
                "flops_per_step": _f(rs[0].get("flops_per_step", "")),
            }
        )
    return out


def _fmt(v, digits=4):
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.{digits}g}"
    return str(v)


def markdown_table(summary) -> str:
    cols = [
        "model",
        "regime",
        "method",
        "final_loss_mean",
        "final_loss_std",
        "test_acc_mean",
        "reached_target",
        "steps_to_target_median",
        "spikes_mean",
        "diverged",
        "mean_h_last_third",
        "two_over_lambda0_end",
        "ms_per_step",
        "flops_per_step",
    ]
    return markdown.markdown_table(summary, cols, default=_fmt)


def _best(summary, families):
    cands = [s for s in summary if s["family"] in families and not math.isnan(s["final_loss_mean"])]
    return min(cands, key=lambda s: s["final_loss_mean"]) if cands else None


def seed_stats(row) -> SeedStats:
    """A summary row (numbers or the strings of summary.csv) as :class:`SeedStats`."""
    return SeedStats(int(row["seeds"]), int(row["diverged"]), _f(row["final_loss_mean"]), _f(row["final_loss_std"]))


def _lower(a, b) -> str:
    """``yes``/``no``/``inconclusive``: is a's final loss lower than b's beyond the seeds' spread."""
    return lower(a["final_loss_mean"], a["final_loss_std"], b["final_loss_mean"], b["final_loss_std"]).answer


def verdicts(summary) -> list[str]:
    """Where the best DAL-p (plain DAL on the gradient) wins and loses, per setting, beyond the seeds' spread."""
    lines = []
    for setting in sorted({(s["model"], s["regime"]) for s in summary}):
        here = [s for s in summary if (s["model"], s["regime"]) == setting]
        dal = _best(here, ("dal",))
        if dal is None:
            continue
        base = [s for s in here if s["family"] in BASELINE_FAMILIES and math.isfinite(s["final_loss_mean"])]
        beat = [s["method"] for s in base if _lower(s, dal) == "yes"]
        tied = [s["method"] for s in base if _lower(s, dal) == "inconclusive"]
        lines.append(
            f"- {setting[0]}, {setting[1]}: best DAL-p is {dal['method']} (loss "
            f"{_fmt(dal['final_loss_mean'])} +- {_fmt(dal['final_loss_std'])}, test acc "
            f"{_fmt(dal['test_acc_mean'])}). Baselines with lower final loss beyond the seeds' spread: "
            f"{', '.join(beat) or 'none'}; within the spread, or without one (fewer than two seeds), so no winner: "
            f"{', '.join(tied) or 'none'}."
        )
        lines += [
            _pair(here, setting, f"dal_{base}", base)
            for base in ("momentum", "adam")
            if _best(here, (f"dal_{base}",)) and _best(here, (base,))
        ]
    return lines


def _pair(here, setting, dal_family: str, base_family: str) -> str:
    """One line: the DAL variant of a base optimizer against its fixed-rate version."""
    d, b = _best(here, (dal_family,)), _best(here, (base_family,))
    winner = {"yes": d["method"], "no": b["method"]}.get(_lower(d, b), "neither (within the seeds' spread)")
    return (
        f"- {setting[0]}, {setting[1]}: {d['method']} (loss {_fmt(d['final_loss_mean'])}, acc "
        f"{_fmt(d['test_acc_mean'])}) vs {b['method']} (loss {_fmt(b['final_loss_mean'])}, acc "
        f"{_fmt(b['test_acc_mean'])}): lower loss {winner}."
    )


def _curves_by(curves):
    out = defaultdict(lambda: defaultdict(list))
    for c in curves:
        d = out[(c["model"], c["regime"], c["method"], c["seed"])]
        for k in ("step", "train_loss", "rate", "two_over_lambda0"):
            d[k].append(_f(c[k]))
    return out


def figures(run: Run, summary, curves) -> list[str]:
    by = _curves_by(curves)
    names = []
    for model, regime in sorted({(s["model"], s["regime"]) for s in summary}):
        here = [s for s in summary if (s["model"], s["regime"]) == (model, regime)]
        best_gd = _best(here, ("gd",))
        shown = [
            s["method"]
            for s in here
            if s["family"] != "gd" and not (s["family"] == "dal" and not s["method"].endswith("_hvp"))
        ]
        shown += [best_gd["method"]] if best_gd else []
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for m in shown:
            c = by.get((model, regime, m, "0"))
            if c:
                ax.semilogy(c["step"], c["train_loss"], label=m, lw=1.2)
        ax.set(xlabel="step", ylabel="full training loss", title=f"{model}, {regime} (seed 0)")
        ax.legend(fontsize=7, ncol=2)
        name = f"loss_{model}_{regime}.png"
        save_fitted(fig, run.figure_path(name))
        names.append(name)

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, m in enumerate(
            s["method"]
            for s in here
            if s["family"] in DAL_FAMILIES and (s["family"] != "dal" or s["method"].endswith("_hvp"))
        ):
            c = by.get((model, regime, m, "0"))
            if c:
                color = f"C{i}"
                ax.semilogy(c["step"], c["rate"], color=color, label=f"{m}: h_t")
                ax.semilogy(c["step"], c["two_over_lambda0"], color=color, ls="--", label=f"{m}: 2/lambda_0")
        ax.set(xlabel="step", ylabel="rate", title=f"DAL rate beside 2/lambda_0: {model}, {regime}")
        ax.legend(fontsize=7)
        name = f"h_vs_sharpness_{model}_{regime}.png"
        save_fitted(fig, run.figure_path(name))
        names.append(name)
    return names


def write(run: Run, cfg, plan=None) -> None:
    """summary.csv, the figures and REPORT.md of the MNIST-subset comparison."""
    rows = read_csv(run.file("results.csv"))
    curves = read_csv(run.file("curves.csv"))
    initial = {tuple(c[k] for k in KEY): _f(c["train_loss"]) for c in curves if c["step"] == "0"}
    summary = summarise(rows, initial)
    run.write_table("summary", summary)
    names = figures(run, summary, curves)
    text = [
        "# compare-optimizers",
        "",
        f"Models {', '.join(cfg.models)}; regimes {', '.join(cfg.regimes)}; {cfg.seeds} seeds; "
        f"{cfg.steps} steps; loss {cfg.loss}; dtype {cfg.dtype}; loss target {cfg.loss_target}.",
        f"Means and sample standard deviations over the seeds that did not diverge; a method beats another "
        "only where its mean loss is lower by more than sqrt(s_a^2 + s_b^2). `diverged` counts runs whose loss went "
        f"non-finite or ended above {BLOW_UP:g}x its initial value (failed to train). "
        "`spikes`: upward crossings of 2x the running minimum of the loss "
        "(per step in full batch, at logged full-loss points in minibatch). `mean_h_last_third`: "
        "the rate over the last third (DAL's h_t, or the fixed rate). `two_over_lambda0_end`: 2/lambda_0 "
        "of the full loss at the end, seed 0, DAL runs only. `ms_per_step`: wall time per step "
        "(compilation excluded), on a shared CPU: indicative only.",
        *sections(verdicts(summary), markdown_table(summary), names),
    ]
    run.write_text("REPORT.md", "\n".join(text))


def sections(verdict_lines, table: str, figure_names, *more) -> list[str]:
    """The body both reports share: where DAL wins and loses, the table, ``more`` (title, text) sections, figures."""
    extra = [line for title, text in more for line in ("", f"## {title}", "", text)]
    return [
        "",
        "## Where DAL wins and loses",
        "",
        *verdict_lines,
        "",
        "## Table",
        "",
        table,
        *extra,
        "",
        "## Figures",
        "",
        *[f"![{n}](figures/{n})" for n in figure_names],
        "",
    ]
