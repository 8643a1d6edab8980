"""REPORT.md, tables and figures of ``compare-optimizers --scale tuned``: the tuning grids and choices, the tuned
methods and the tuning-free group on the test set, SGD's whole grid against untuned DAL, the rate multipliers,
and DAL's four claims (:mod:`gdflows.experiments.optimizers.claims`), read from the run folder's CSV files."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gdflows.experiments.optimizers import claims, tables  # noqa: E402
from gdflows.experiments.optimizers.field_report import HIGHER, LABEL, _triple, flops_axis, pm  # noqa: E402
from gdflows.experiments.optimizers.spread import tally, versus  # noqa: E402
from gdflows.experiments.optimizers.tuning import SGD, next_jobs, settle_all, validation_failed  # noqa: E402
from gdflows.experiments.report.markdown import markdown_table  # noqa: E402
from gdflows.experiments.report.plots import save_fitted  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402
from gdflows.experiments.report.timings import cpu_text  # noqa: E402

BUDGETS = {"equal epochs": "", "equal FLOPs": "_at_F"}


class NetResults:
    """One net's rows, its knobs' settlement and the summary rows by method name."""

    def __init__(self, model: str, rows: list[dict], summary: list[dict], tuning):
        self.model, self.tuning = model, tuning
        self.rows = [r for r in rows if r["model"] == model]
        self.settled = {s.knob.family: s for s in settle_all(tuning, self.rows)}
        self.by_name = {s["method"]: s for s in summary if s["model"] == model}

    def chosen(self, family: str) -> dict | None:
        s = self.settled[family]
        return None if s.chosen is None else self.by_name.get(s.knob.method_name(s.chosen))

    def default_dal(self) -> dict | None:
        return self.by_name.get(self.settled["dal"].knob.method_name(self.tuning.dal_default))

    def free(self) -> list[dict]:
        return [self.by_name[m.name] for m in self.tuning.free if m.name in self.by_name]

    def sgd_grid(self) -> list[dict]:
        s = self.settled[SGD]
        return [self.by_name[n] for k in s.ks if (n := s.knob.method_name(k)) in self.by_name]

    def multipliers(self) -> list[tuple[float, dict | None, dict | None]]:
        """(c, DAL's row at c, SGD's row at c) for c = 1 and each multiplier."""
        dal, sgd = self.settled["dal"], self.settled[SGD]
        out = [(1.0, self.chosen("dal"), self.chosen(SGD))]
        for j, c in enumerate(self.tuning.multipliers(), start=1):
            d = None if dal.chosen is None else self.by_name.get(dal.knob.method(dal.chosen, rate_scale=c).name)
            g = None if sgd.chosen is None else self.by_name.get(sgd.knob.method_name(sgd.chosen + j))
            out.append((c, d, g))
        return out


def _outcome(a: dict, b: dict, metric: str, suffix: str) -> str:
    return versus(_triple(a, metric, suffix), _triple(b, metric, suffix), HIGHER[metric])


def tuning_rows(net: NetResults) -> list[dict]:
    """Per knob and grid point: the value, seed 0's final validation loss and accuracy, how many of its seeds
    failed on the validation split (a point with one is no choice), and which was chosen."""
    out = []
    for family, s in net.settled.items():
        for k in s.ks:
            runs = [r for r in net.rows if r["method"] == s.knob.method_name(k)]
            r = next((r for r in runs if str(r["seed"]) == "0"), None)
            if r is None:
                continue
            out.append(
                {
                    "model": net.model,
                    "family": family,
                    "hyperparameter": s.knob.name,
                    "value": s.knob.value(k),
                    "grid": "extension" if abs(k) > net.tuning.points // 2 else "grid",
                    "val_loss": float(f"{tables.num(r['val_loss']):.4g}"),
                    "val_acc": round(tables.num(r["val_acc"]), 4),
                    "seeds_failed": f"{sum(validation_failed(x) for x in runs)}/{len(runs)}",
                    "chosen": k == s.chosen,
                    "chosen_at_edge": s.at_edge and k == s.chosen,
                }
            )
    return out


def _line(net: NetResults, group: str, s: dict, sgd: dict | None) -> dict:
    return {
        "model": net.model,
        "group": group,
        "method": s["method"],
        "failed": f"{s['failed']}/{s['seeds']}",
        "test acc": pm(s["test_acc"], s["test_acc_std"]),
        "test loss": pm(s["test_loss"], s["test_loss_std"]),
        "test acc at F": pm(s["test_acc_at_F"], s["test_acc_at_F_std"]),
        "test loss at F": pm(s["test_loss_at_F"], s["test_loss_at_F_std"]),
        "epochs at F": pm(s["epoch_at_F"], s["epoch_at_F_std"], 2),
        "MFLOP/step": f"{s['flops_per_step'] / 1e6:.1f}",
        "FLOPs / SGD": f"{s['flops_per_step'] / sgd['flops_per_step']:.2f}" if sgd else "-",
    }


def final_rows(net: NetResults) -> list[dict]:
    """The tuned methods (chosen on validation) and the tuning-free group (defaults), on the test set."""
    sgd = net.chosen(SGD)
    tuned = [(f"tuned {f}", row) for f in net.settled if (row := net.chosen(f)) is not None]
    free = [("tuning-free", row) for row in [net.default_dal(), *net.free()] if row is not None]
    return [_line(net, group, row, sgd) for group, row in tuned + free]


def grid_rows(net: NetResults) -> list[dict]:
    """SGD's whole grid against untuned DAL, test accuracy and loss at equal epochs."""
    dal = net.default_dal()
    out = []
    for s in net.sgd_grid():
        row = {"model": net.model, "sgd": s["method"], "failed": f"{s['failed']}/{s['seeds']}"}
        row |= {"test acc": pm(s["test_acc"], s["test_acc_std"]), "test loss": pm(s["test_loss"], s["test_loss_std"])}
        if dal is not None:
            row |= {f"untuned DAL, {LABEL[m]}": _outcome(dal, s, m, "") for m in HIGHER}
        out.append(row)
    return out


def multiplier_rows(net: NetResults) -> list[dict]:
    def failed(s):
        return "-" if s is None else f"{s['failed']}/{s['seeds']}"

    return [
        {
            "model": net.model,
            "multiplier": c,
            "DAL": d["method"] if d else "-",
            "DAL failed": failed(d),
            "SGD": g["method"] if g else "-",
            "SGD failed": failed(g),
        }
        for c, d, g in net.multipliers()
    ]


def claim_rows(net: NetResults) -> list[dict]:
    """DAL's four claims on this net, each per metric and budget (stability: once)."""
    dal, tuned_dal, sgd = net.default_dal(), net.chosen("dal"), net.chosen(SGD)
    out = []

    def add(claim, budget, metric, verdict):
        out.append({"model": net.model, "claim": claim, "budget": budget, "metric": metric} | _verdict(verdict))

    for budget, suffix in BUDGETS.items():
        for metric in HIGHER:
            if dal is not None:
                grid = [_outcome(dal, s, metric, suffix) for s in net.sgd_grid()]
                add(
                    "untuned DAL beats most of SGD's grid",
                    budget,
                    metric,
                    claims.beats_most_of_grid(grid, _failed(dal)),
                )
                free = {s["method"]: _outcome(dal, s, metric, suffix) for s in net.free()}
                add(
                    "untuned DAL beats every tuning-free method", budget, metric, claims.beats_every(free, _failed(dal))
                )
            if tuned_dal is not None and sgd is not None:
                verdict = claims.beats(_outcome(tuned_dal, sgd, metric, suffix), _failed(tuned_dal))
                add("tuned DAL beats tuned SGD", budget, metric, verdict)
    pairs = [(c, d, g) for c, d, g in net.multipliers() if d is not None and g is not None]
    if pairs:
        verdict = claims.more_stable({c: _failed(d) for c, d, _ in pairs}, {c: _failed(g) for c, _, g in pairs})
        add("DAL stays stable at larger rate multipliers than SGD", "-", "failed seeds", verdict)
    return out


def tally_rows(net: NetResults) -> list[dict]:
    """Tuned DAL against every other tuned and tuning-free method, per budget and metric: wins, ties, losses,
    and the pairs with a failed method (counted as nobody's)."""
    dal = net.chosen("dal")
    if dal is None:
        return []
    others = {row["method"]: row for row in [*map(net.chosen, net.settled), net.default_dal(), *net.free()] if row}
    others.pop(dal["method"], None)
    out = []
    for budget, suffix in BUDGETS.items():
        for metric in HIGHER:
            counts = tally(_outcome(dal, o, metric, suffix) for o in others.values())
            out.append({"model": net.model, "dal": dal["method"], "budget": budget, "metric": metric} | counts)
    return out


def _failed(s: dict) -> bool:
    return s["failed"] > 0


def _verdict(v) -> dict:
    return {"verdict": v.answer, "why": v.why}


def figures(run: Run, nets: list[NetResults], curves) -> list[str]:
    """Per net: seed 0's final validation loss across each rate's grid and across DAL's p (chosen points ringed,
    points with a failed seed crossed, losses above 3 drawn at 3), and the test accuracy of the tuned and
    tuning-free methods against FLOPs (seed 0)."""
    runs = tables.curves_by_run(curves)
    names = []
    for net in nets:
        fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), gridspec_kw={"width_ratios": [2, 1, 2]})
        table = tuning_rows(net)
        for i, (family, s) in enumerate(net.settled.items()):
            ax = axes[0] if s.knob.name == "lr" else axes[1]
            pts = [r for r in table if r["family"] == family]
            x, y = [p["value"] for p in pts], [min(p["val_loss"], 3.0) for p in pts]
            ax.plot(x, y, "-", color=f"C{i}", label=f"{family} ({s.knob.name})")
            if s.knob.name != "lr":
                ax.set_xscale("log")
                ax.set_xticks(x, [f"{v:g}" for v in x], minor=False)
                ax.minorticks_off()
            for p, xi, yi in zip(pts, x, y):
                failed = not p["seeds_failed"].startswith("0/")
                ax.plot(xi, yi, "x" if failed else "o", color=f"C{i}", ms=7)
                if p["chosen"]:
                    ax.plot(xi, yi, "o", ms=14, mfc="none", color=f"C{i}")
        for ax, label in zip(axes[:2], ("rate", "DAL's p")):
            ax.set(xlabel=label, ylim=(0, 3.1))
            ax.legend(fontsize=7)
        axes[0].set_xscale("log")
        axes[0].set(ylabel="final validation loss (seed 0)", title=f"{net.model}: tuning grids (x: a seed failed)")
        axes[1].set(title="DAL-p")
        shown = {line["method"]: line for line in final_rows(net)}
        for i, line in enumerate(shown.values()):
            s = net.by_name[line["method"]]
            points = runs.get((net.model, s["method"], "0"), [])
            style = {"color": f"C{i % 10}", "ls": "-" if line["group"] == "tuning-free" else "--", "lw": 1.2}
            axes[2].plot([tables.num(p["step"]) * s["flops_per_step"] for p in points],
                         [tables.num(p["test_acc"]) for p in points], label=f"{line['method']}", **style)  # fmt: skip
        budget = next((s["budget_flops"] for s in net.by_name.values()), math.nan)
        flops_axis(axes[2], budget, f"{net.model}: tuned (dashed), tuning-free (solid); F dotted")
        axes[2].set(ylabel="test accuracy")
        if axes[2].get_legend_handles_labels()[0]:
            axes[2].legend(fontsize=7, ncol=2)
        name = f"tuning_{net.model}.png"
        save_fitted(fig, run.figure_path(name))
        names.append(name)
    return names


def _md(rows: list[dict]) -> str:
    return markdown_table(rows, list(rows[0])) if rows else "(none)"


def claim_prose(rows: list[dict]) -> list[str]:
    """One line per claim and net: its answers on test accuracy at each budget, with why."""
    lines = []
    for r in rows:
        if r["metric"] in ("test_acc", "failed seeds"):
            why = f" ({r['why']})" if r["why"] else ""
            budget = f", {r['budget']}" if r["budget"] != "-" else ""
            lines.append(f"- {r['model']}{budget}: {r['claim']}: **{r['verdict']}**{why}.")
    return lines


def write(run: Run, cfg, plan) -> None:
    """summary.csv, tuning.csv, table.csv, grid.csv, multipliers.csv, claims.csv, the figures and REPORT.md."""
    rows, curves = read_csv(run.file("results.csv")), read_csv(run.file("curves.csv"))
    models = [n.model for n in plan.nets if any(r["model"] == n.model for r in rows)]
    pending = {m: len(next_jobs(plan.tuning, [r for r in rows if r["model"] == m], cfg.seeds)) for m in models}
    models = [m for m in models if not pending[m]]  # a net still tuning is reported once it is done
    if not models:
        run.write_text("REPORT.md", "# compare-optimizers --scale tuned\n\nNo net has finished its runs yet; rerun.\n")
        return
    rows = [r for r in rows if r["model"] in models]
    curves = [c for c in curves if c["model"] in models]
    probe = {m: NetResults(m, rows, [], plan.tuning) for m in models}
    chosen = {m: n.settled[SGD].knob.method_name(n.settled[SGD].chosen) for m, n in probe.items()
              if n.settled[SGD].chosen is not None}  # fmt: skip
    summary = tables.summarise(rows, curves, plan.n_test, plan.classes, chosen)
    nets = [NetResults(m, rows, summary, plan.tuning) for m in models]
    run.write_table("summary", summary)
    parts = {name: [r for net in nets for r in fn(net)] for name, fn in TABLES.items()}
    for name, table in parts.items():
        run.write_table(name, table)
    names = figures(run, nets, curves)
    text = _text(cfg, plan, rows, parts, names, run)
    unfinished = [n.model for n in plan.nets if n.model not in models]
    if unfinished:
        text[1:1] = ["", f"**Not yet in this report** (rerun the command to finish them): {', '.join(unfinished)}."]
    run.write_text("REPORT.md", "\n".join(text))


SECTIONS = (  # the report's table sections, in order: (title, key of TABLES)
    ("Tuned DAL against every other method (failed pairs counted as nobody's)", "tally"),
    ("Tuned and tuning-free methods on the test set", "table"),
    ("The tuning grids (seed 0, validation split)", "tuning"),
    ("SGD's whole grid against untuned DAL (equal epochs)", "grid"),
    ("Rate multipliers", "multipliers"),
)
TABLES = {
    "tuning": tuning_rows,
    "table": final_rows,
    "grid": grid_rows,
    "multipliers": multiplier_rows,
    "claims": claim_rows,
    "tally": tally_rows,
}


def _text(cfg, plan, rows, parts, names, run) -> list[str]:
    t = plan.tuning
    (batch,) = plan.regimes.values()
    sizes = ", ".join(
        f"{n.model} {n.kwargs} ({next(r['params'] for r in rows if r['model'] == n.model)} parameters)"
        for n in plan.nets
        if any(r["model"] == n.model for r in rows)
    )
    knobs = "; ".join(
        f"{k.family} {k.name} {', '.join(f'{k.value(j):g}' for j in range(-(t.points // 2), t.points // 2 + 1))}"
        for k in t.knobs
    )
    net = plan.nets[0]
    return [
        "# compare-optimizers --scale tuned: DAL against a fairly tuned field",
        "",
        f"Fashion-MNIST: {net.n_train or 'all'} training images, a validation split of {plan.n_val} carved from "
        f"the rest of the training set, {'the full' if plan.n_test is None else 'a'} test set of "
        f"{rows[0]['test_n']} images; images pooled {net.downsample}x. Nets {sizes}; {plan.loss}, {plan.dtype}; batch "
        f"{batch}, {plan.epochs} epochs, {cfg.seeds} seeds (the same initialisation and batches for every method "
        "of a seed).",
        "",
        "## Protocol",
        "",
        f"- Tuning: every method with a rate-like hyperparameter gets the same budget, {t.points} log-spaced "
        f"points: {knobs}. Seed 0 runs each point; the point with the lowest final validation loss among those "
        f"that did not fail on the validation split is chosen; while it sits at an edge, one more point beyond "
        f"that edge is run (at most {t.extensions} per method). The chosen point then runs the other seeds; a "
        "point that fails on any seed is no choice, and the next is taken. The test set plays no part in any "
        "choice.",
        "- DAL-p: h = min(2 / (|Hg|/|g|)^p, 5), Hg by HVP; tuned over p, and untuned (p = 1) in the tuning-free "
        "group with Prodigy, DoG (optax.contrib defaults), Polyak (f_min = 0, cap 5) and CDAT (sigma = 2, cap 5).",
        f"- Rate multipliers c = {', '.join(f'{c:g}' for c in t.multipliers())} (SGD's grid steps): DAL at its "
        "chosen p with h = c min(2 / v^p, 5), beside SGD at c times its tuned rate, all seeds.",
        "- A run fails when it diverges, ends at chance test accuracy (the lower end of its 95% Wilson interval "
        f"at or below 1/{plan.classes}) or ends at or above its starting test loss; a method with a failed seed "
        "is compared with no one. Method a beats b when its mean over seeds is better by more than "
        "sqrt(s_a^2 + s_b^2); otherwise a tie (inconclusive).",
        "- Equal FLOPs: each run read at the last evaluation within F, tuned SGD's FLOPs for its run (XLA's cost "
        "analysis of one step times the steps; within 0.1%, as the optimizers' bookkeeping adds ~0.01% a step).",
        "",
        "## Which of DAL's claims hold (test accuracy; test loss in `claims.csv`)",
        "",
        *claim_prose(parts["claims"]),
        "",
        *(line for title, key in SECTIONS for line in (f"## {title}", "", _md(parts[key]), "")),
        "## Cost",
        "",
        "Wall and CPU time per method (compilation, training and evaluations) in `timings.csv`."
        + cpu_text(run, "methods (all their seeds)"),
        "",
        "## Figures",
        "",
        *[f"![{n}](figures/{n})" for n in names],
        "",
    ]
