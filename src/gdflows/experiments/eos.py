r"""Edge-of-stability verdicts, figures and report text of a training run, read from its metrics rows.

Shared by ``gdflows train``, ``gdflows demo`` and ``gdflows reproduce``; the
rows are those of :mod:`gdflows.experiments.train` (dicts of numbers, or of
strings when read back from ``metrics.csv``). Nothing here recomputes a
diagnosis. The theory: docs/theory.md, section 7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdflows.errors import GDFlowsError
from gdflows.experiments import predictors
from gdflows.experiments.report import eos_plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.runs import Run, read_csv
from gdflows.experiments.verdicts import edge_of_stability


def outcome(rows) -> str:
    """``completed``, ``diverged at step n``, or ``interrupted`` (no final row yet)."""
    return str(rows[-1].get("outcome") or "interrupted") if rows else "interrupted"


def diagnosed(rows) -> list:
    """The rows that hold a diagnosis (all but a divergence row)."""
    return [r for r in rows if r.get("lambda_0") not in ("", None)]


def first_at_edge(rows, edge_at: float) -> int | None:
    """The index of the first diagnosed row of ``rows`` with lambda_0 >= ``edge_at`` 2/h (None: none)."""
    for i, r in enumerate(rows):
        if float(r["lambda_0"]) >= edge_at * float(r["two_over_h"]):
            return i
    return None


def eos_verdicts(rows, tol: float = 0.1, noise_rtol: float = 1e-6) -> dict:
    """The edge-of-stability and sign verdicts from metrics rows (dicts; strings or numbers).

    * ``rose_from_below``: some logged lambda_0 before the last third of the run
      lies below (1 - tol) 2/h; ``hovers``: every logged lambda_0 in the last third
      (steps >= 2/3 of the last logged step) has |lambda_0 / (2/h) - 1| <= tol;
      ``edge_of_stability``: both.
    * ``predictors``: :func:`gdflows.experiments.predictors.table`, every predictor's scores over the
      steps whose observed change is above noise, |E(theta_n - h g_n) - E_n| > noise_rtol |E_n| (E: the
      diagnosed loss, ``curvature_loss`` where the rows have it, else ``loss``); ``sign_agreement``,
      ``quadratic_agreement``, ``majority_baseline``: the accuracy of the PF's dE/dt, of the one-step
      quadratic model and of the majority sign; ``sign``: the paired rule, the PF's dE/dt against every
      baseline (:func:`~gdflows.experiments.predictors.every`); ``signs_agree``: it holds.
    * ``verdict``: :func:`~gdflows.experiments.verdicts.edge_of_stability` of both.
    * ``c0_flip_fraction``: fraction of logged steps in the last third with
      c_0 c_0,next < 0 (h lambda_0 > 1 makes c_0 flip every step).
    """
    rows = diagnosed(rows)
    if len(rows) < 3:
        raise GDFlowsError(f"eos_verdicts needs at least 3 diagnosed rows, got {len(rows)}; log more often")
    steps, edge = predictors.column(rows, "step"), float(rows[0]["two_over_h"])
    sharp, threshold, threshold_name, sharpness_name = edge_series(rows)
    ratio = sharp / threshold
    last = steps >= 2 * steps[-1] / 3
    dev = float(np.nanmax(np.abs(ratio[last] - 1)))
    scored = {r["predictor"]: r for r in predictors.table(rows, noise_rtol)}
    pf = scored["PF dE/dt"]
    sign = pf["beats_baselines"]
    flips = (predictors.column(rows, "c_0") * predictors.column(rows, "c_0_next"))[last] < 0
    rose = bool(np.any(ratio[~last] < 1 - tol))
    return {
        "lr": 2 / edge,
        "two_over_lr": edge,
        "sharpness_name": sharpness_name,
        "threshold_name": threshold_name,
        "min_ratio_before_last_third": float(np.nanmin(ratio[~last])),
        "rose_from_below": rose,
        "mean_ratio_last_third": float(np.nanmean(ratio[last])),
        "max_deviation_last_third": dev,
        "hovers": dev <= tol,
        "edge_of_stability": rose and dev <= tol,
        "steps_above_noise": pf["steps"],
        "sign_agreement": pf["accuracy"],
        "quadratic_agreement": scored.get("one-step quadratic model", {}).get("accuracy", float("nan")),
        "majority_baseline": scored["majority sign"]["accuracy"],
        "sign": sign,
        "predictors": list(scored.values()),
        "signs_agree": sign.holds,
        "verdict": edge_of_stability(rose, dev <= tol, sign),
        "c0_flip_fraction": float(np.mean(flips)),
    }


def edge_series(rows) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(sharpness, threshold, the threshold's name, the sharpness' name) per diagnosed row: the optimizer's own
    where the rows carry it (``sharpness``, ``threshold``: :func:`gdflows.experiments.train.matched_columns`),
    else lambda_0 against GD's 2/h."""
    if rows and str(rows[0].get("threshold", "")) not in ("", "nan"):
        names = str(rows[0]["threshold_name"]), str(rows[0].get("sharpness_name") or "the sharpness")
        return predictors.column(rows, "sharpness"), predictors.column(rows, "threshold"), *names
    return predictors.column(rows, "lambda_0"), predictors.column(rows, "two_over_h"), "2/h", "lambda_0"


def ratio_text(v: dict) -> str:
    """What the verdict's ratios divide: lambda_0 by 2/lr for GD, else the optimizer's sharpness by its threshold."""
    name, edge = v.get("sharpness_name", "lambda_0"), v.get("threshold_name", "2/h")
    if (name, edge) == ("lambda_0", "2/h"):
        return "lambda_0 / (2/lr)"
    return f"{name} over its threshold {edge}" + ("" if edge.startswith("2/h") else " (not GD's 2/h)")


def sharpness_title(v: dict) -> str:
    """The sharpness figure's title, saying only what the run's verdicts say (against the run's threshold)."""
    what, edge = v.get("sharpness_name", "lambda_0"), v.get("threshold_name", "2/h")
    if v["edge_of_stability"]:
        return "Sharpness: progressive sharpening, then the edge of stability"
    if v["hovers"]:
        return f"Sharpness: {what} stays near {edge} (it did not rise from below)"
    if v["rose_from_below"]:
        return f"Sharpness: {what} rises but does not settle at {edge}"
    return f"Sharpness: {'lambda_i' if what == 'lambda_0' else what} against {edge} (no edge of stability)"


def verdict_prose(v: dict) -> str:
    """Sentences on what the run showed: the edge of stability and the PF's sign prediction, from ``v``."""
    what, threshold = v.get("sharpness_name", "lambda_0"), v.get("threshold_name", "2/h")
    if v["edge_of_stability"]:
        edge = f"{what} rose to {threshold} and hovers there (edge of stability)"
    else:
        edge = f"{what} did not rise to {threshold} and hover there ({sharpness_title(v).split(': ', 1)[1]})"
    logged = np.isfinite(v["quadratic_agreement"])  # runs logged before the quadratic model lack it
    quadratic = f"{v['quadratic_agreement']:.1%} for the one-step quadratic model and " if logged else ""
    rate = f"{v['sign_agreement']:.1%} of {v['steps_above_noise']} steps, against {quadratic}"
    rate += f"{v['majority_baseline']:.1%} for the majority sign"
    baselines = ("the one-step quadratic model, " if logged else "") + "gradient flow and the majority sign"
    if v["sign"].holds:
        sign = f"the PF's dE/dt = sum_i sc_i c_i^2 predicts the loss change's sign better than {baselines} ({rate})"
    elif v["sign"].answer == "no":
        sign = f"the PF's dE/dt does not predict the loss change's sign better than all of {baselines} ({rate})"
    else:
        sign = (
            f"these steps cannot tell whether the PF's dE/dt predicts the sign of the loss change better than "
            f"{baselines} (inconclusive; {rate})"
        )
    return f"In this run {edge}; {sign}. Verdict: **{v['verdict']}**."


def figures(run: Run, rows, tol: float, noise_rtol: float = 1e-6) -> dict[str, Path]:
    """The four figures of a training run, drawn from its metrics rows (the sharpness title from its
    verdicts, the loss figure marking a divergence)."""
    diag = diagnosed(rows)
    title = sharpness_title(eos_verdicts(diag, tol, noise_rtol)) if len(diag) >= 3 else None
    return {
        "sharpness": eos_plots.sharpness(run.figure_path("sharpness.png"), diag, tol, title),
        "sc_0": eos_plots.stability_coefficient(run.figure_path("sc0.png"), diag),
        "c_0": eos_plots.projection(run.figure_path("c0.png"), diag),
        "loss": eos_plots.loss_change(run.figure_path("loss.png"), rows),
    }


VERDICT_COLUMNS = (
    "lr",
    "min_ratio_before_last_third",
    "mean_ratio_last_third",
    "max_deviation_last_third",
    "edge_of_stability",
    "steps_above_noise",
    "sign_agreement",
    "quadratic_agreement",
    "majority_baseline",
    "c0_flip_fraction",
    "verdict",
)
VERDICT_FORMAT = {
    "lr": "{:g}",
    "min_ratio_before_last_third": "{:.3f}",
    "mean_ratio_last_third": "{:.3f}",
    "max_deviation_last_third": "{:.3f}",
    "sign_agreement": "{:.1%}",
    "quadratic_agreement": "{:.1%}",
    "majority_baseline": "{:.1%}",
    "c0_flip_fraction": "{:.0%}",
}


def report_markdown(run: Run, cfg, prefix: str = "") -> str:
    """Outcome, verdicts and figures of a run (``cfg``: its TrainConfig); image links are ``prefix + figures/...``."""
    rows = read_csv(run.file("metrics.csv"))
    head = (
        f"Outcome: **{outcome(rows)}** after {rows[-1]['step']} of {cfg.steps} steps "
        f"({cfg.optimizer}, lr = {cfg.lr:g}, {cfg.net.model} {cfg.net.activation}, "
        f"{cfg.net.loss}, {cfg.net.n_train} training images)."
    )
    if cfg.optimizer != "gd" or cfg.batch_size:
        update = f"minibatches of {cfg.batch_size}" if cfg.optimizer == "gd" else f"{cfg.optimizer}'s update"
        head += (
            " The PF's columns (dE/dt, sc_i, the sign agreement) are full-batch GD's at h = lr on the curvature "
            f"subset: they do not model this run's steps ({update}); the sharpness columns do."
        )
    return head + "\n\n" + diagnosis_markdown(run, rows, cfg.hover_tol, cfg.noise_rtol, prefix)


def diagnosis_markdown(run: Run, rows, hover_tol: float, noise_rtol: float, prefix: str = "") -> str:
    """The verdicts, predictor table, prose and figures of a run's metrics ``rows`` (figures drawn into ``run``)."""
    lines = []
    if len(diagnosed(rows)) >= 3:
        v = eos_verdicts(rows, hover_tol, noise_rtol)
        lines += [
            markdown_table([v], VERDICT_COLUMNS, VERDICT_FORMAT),
            "",
            f"Ratios are {ratio_text(v)}; the edge-of-stability verdict asks the ratio to fall "
            f"below {1 - hover_tol:g} before the last third and to stay within "
            f"{hover_tol:.0%} of 1 in it. Sign agreement: sign(PF dE/dt) = sign(E_(n+1) - E_n) "
            f"on steps where |E_(n+1) - E_n| > {noise_rtol:g} E_n; quadratic_agreement and "
            "majority_baseline: the same for the one-step quadratic model and the majority sign.",
            "",
            "Every predictor of the loss change's sign on those steps (95% Wilson intervals; rises are the "
            "events the PF claims to explain):",
            "",
            markdown_table(predictors.display(v["predictors"]), predictors.DISPLAY_COLUMNS),
            "",
            "The PF beats every baseline when an exact paired (McNemar) test against each of the one-step "
            f"quadratic model, gradient flow and the majority sign has p <= {predictors.ALPHA:g}; it does not "
            f"when a {predictors.MIN_GAIN:.0%} accuracy gain over one of them is excluded; else these steps "
            "cannot tell (inconclusive).",
            "",
            verdict_prose(v),
            "",
        ]
    for name, path in figures(run, rows, hover_tol, noise_rtol).items():
        lines.append(f"![{name}]({prefix}figures/{path.name})")
    return "\n".join(lines) + "\n"
