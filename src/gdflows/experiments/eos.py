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
from gdflows.experiments.report import eos_plots
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.runs import Run, read_csv
from gdflows.experiments.verdicts import beats_baseline, edge_of_stability


def outcome(rows) -> str:
    """``completed``, ``diverged at step n``, or ``interrupted`` (no final row yet)."""
    return str(rows[-1].get("outcome") or "interrupted") if rows else "interrupted"


def _col(rows, key) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows])


def diagnosed(rows) -> list:
    """The rows that hold a diagnosis (all but a divergence row)."""
    return [r for r in rows if r.get("lambda_0") not in ("", None)]


def eos_verdicts(rows, tol: float = 0.1, noise_rtol: float = 1e-6) -> dict:
    """The edge-of-stability and sign verdicts from metrics rows (dicts; strings or numbers).

    * ``rose_from_below``: some logged lambda_0 before the last third of the run
      lies below (1 - tol) 2/h; ``hovers``: every logged lambda_0 in the last third
      (steps >= 2/3 of the last logged step) has |lambda_0 / (2/h) - 1| <= tol;
      ``edge_of_stability``: both.
    * ``sign_agreement``: over the steps whose observed change is above noise,
      |E(theta_n - h g_n) - E_n| > noise_rtol |E_n| (E: the diagnosed loss,
      ``curvature_loss`` where the rows have it, else ``loss``), the fraction where
      sign(PF dE/dt) = sign(observed_dE_dt); ``majority_baseline``: the fraction
      that always predicting the majority sign of the observed change gets right;
      ``sign``: :func:`~gdflows.experiments.verdicts.beats_baseline` (the PF must beat
      the baseline by two binomial standard errors); ``signs_agree``: it holds.
    * ``verdict``: :func:`~gdflows.experiments.verdicts.edge_of_stability` of both.
    * ``c0_flip_fraction``: fraction of logged steps in the last third with
      c_0 c_0,next < 0 (h lambda_0 > 1 makes c_0 flip every step).
    """
    rows = diagnosed(rows)
    if len(rows) < 3:
        raise GDFlowsError(f"eos_verdicts needs at least 3 diagnosed rows, got {len(rows)}; log more often")
    steps, edge = _col(rows, "step"), float(rows[0]["two_over_h"])
    ratio = _col(rows, "lambda_0") / edge
    last = steps >= 2 * steps[-1] / 3
    dev = float(np.max(np.abs(ratio[last] - 1)))
    loss = _col(rows, "curvature_loss" if "curvature_loss" in rows[0] else "loss")  # the loss loss_next is of
    change = _col(rows, "loss_next") - loss
    above = np.isfinite(change) & (np.abs(change) > noise_rtol * np.abs(loss))
    observed = np.sign(change[above])
    share = float(np.mean(np.sign(_col(rows, "dE_dt")[above]) == observed)) if above.any() else float("nan")
    baseline = float(max(np.mean(observed > 0), np.mean(observed < 0))) if above.any() else float("nan")
    sign = beats_baseline(share, baseline, int(above.sum()))
    flips = (_col(rows, "c_0") * _col(rows, "c_0_next"))[last] < 0
    rose = bool(np.any(ratio[~last] < 1 - tol))
    return {
        "lr": 2 / edge,
        "two_over_lr": edge,
        "min_ratio_before_last_third": float(np.min(ratio[~last])),
        "rose_from_below": rose,
        "mean_ratio_last_third": float(np.mean(ratio[last])),
        "max_deviation_last_third": dev,
        "hovers": dev <= tol,
        "edge_of_stability": rose and dev <= tol,
        "steps_above_noise": int(above.sum()),
        "sign_agreement": share,
        "majority_baseline": baseline,
        "sign": sign,
        "signs_agree": sign.holds,
        "verdict": edge_of_stability(rose, dev <= tol, sign),
        "c0_flip_fraction": float(np.mean(flips)),
    }


def sharpness_title(v: dict) -> str:
    """The sharpness figure's title, saying only what the run's verdicts say."""
    if v["edge_of_stability"]:
        return "Sharpness: progressive sharpening, then the edge of stability"
    if v["hovers"]:
        return "Sharpness: lambda_0 stays near 2/h (it did not rise from below)"
    if v["rose_from_below"]:
        return "Sharpness: lambda_0 rises but does not settle at 2/h"
    return "Sharpness: lambda_i against 2/h (no edge of stability)"


def verdict_prose(v: dict) -> str:
    """Sentences on what the run showed: the edge of stability and the PF's sign prediction, from ``v``."""
    if v["edge_of_stability"]:
        edge = "lambda_0 rose to 2/h and hovers there (edge of stability)"
    else:
        edge = f"lambda_0 did not rise to 2/h and hover there ({sharpness_title(v).split(': ', 1)[1]})"
    rate = f"{v['sign_agreement']:.1%} of {v['steps_above_noise']} steps, against {v['majority_baseline']:.1%}"
    if v["sign"].holds:
        sign = (
            "the PF's dE/dt = sum_i sc_i c_i^2 predicts the sign of the loss change better than always "
            f"guessing the majority sign ({rate})"
        )
    else:
        sign = (
            "the PF's dE/dt does not predict the sign of the loss change beyond always guessing the "
            f"majority sign ({v['sign']}; {rate})"
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
    "majority_baseline": "{:.1%}",
    "c0_flip_fraction": "{:.0%}",
}


def report_markdown(run: Run, cfg, prefix: str = "") -> str:
    """Outcome, verdicts and figures of a run (``cfg``: its TrainConfig); image links are ``prefix + figures/...``."""
    rows = read_csv(run.file("metrics.csv"))
    lines = [
        f"Outcome: **{outcome(rows)}** after {rows[-1]['step']} of {cfg.steps} steps "
        f"({cfg.optimizer}, lr = {cfg.lr:g}, {cfg.net.model} {cfg.net.activation}, "
        f"{cfg.net.loss}, {cfg.net.n_train} training images).",
        "",
    ]
    if len(diagnosed(rows)) >= 3:
        v = eos_verdicts(rows, cfg.hover_tol, cfg.noise_rtol)
        lines += [
            markdown_table([v], VERDICT_COLUMNS, VERDICT_FORMAT),
            "",
            f"Ratios are lambda_0 / (2/lr); the edge-of-stability verdict asks the ratio to fall "
            f"below {1 - cfg.hover_tol:g} before the last third and to stay within "
            f"{cfg.hover_tol:.0%} of 1 in it. Sign agreement: sign(PF dE/dt) = sign(E_(n+1) - E_n) "
            f"on steps where |E_(n+1) - E_n| > {cfg.noise_rtol:g} E_n; majority_baseline: the share "
            "of those steps that always guessing the majority sign gets right, which the PF must beat by "
            "two binomial standard errors.",
            "",
            verdict_prose(v),
            "",
        ]
    for name, path in figures(run, rows, cfg.hover_tol, cfg.noise_rtol).items():
        lines.append(f"![{name}]({prefix}figures/{path.name})")
    return "\n".join(lines) + "\n"
