r"""Where the Principal Flow follows GD on non-quadratic losses, measured (docs/theory.md, sections 3 and 10).

On a quadratic the PF is GD's exact interpolation for every h. Elsewhere it is
a model whose error grows with h lambda: once h lambda > 1 its state is
complex, and GD's real iterates stay on it only while the loss along the
oscillation is close to quadratic. This experiment measures for how many GD
steps the PF stays with GD, as a function of h lambda_0 (lambda_0: the top
Hessian eigenvalue at the start) and of the distance to the edge,
h lambda_0 - 2.

For each problem and each h lambda_0, GD and the PF run ``steps`` steps from
the same theta_0 with h = (h lambda_0) / lambda_0, and

.. math::

    r_n = \frac{|\theta^{PF}(n h) - \theta_n|}{\max_{k \le n} |\theta_k - \theta_0|}

is the PF's distance to GD relative to how far GD has moved (complex states
count their imaginary part; a solve that stopped counts as lost). The PF
*follows GD to tolerance tol up to step n* when r_k <= tol for every k <= n
(:func:`gdflows.experiments.toys.tracked_steps`).

Problems: the sharp Gaussian dip (:class:`gdflows.problems.toys.SharpDip`, from
0.01 beside its sharp minimum) and a small tanh MLP (one hidden layer, MSE, 64
bundled MNIST images pooled to 4x4), whose PF is evaluated by the Krylov path
(its exact outliers and error estimate; the dense path's complex ``eig`` is
slower at this size).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gdflows  # noqa: E402
from gdflows.experiments.configs import PFValidityConfig  # noqa: E402
from gdflows.experiments.network_setup import NetworkSetup  # noqa: E402
from gdflows.experiments.report.markdown import markdown_table  # noqa: E402
from gdflows.experiments.report.plots import save_fitted  # noqa: E402
from gdflows.experiments.report.progress import track  # noqa: E402
from gdflows.experiments.report.runs import Run, read_csv  # noqa: E402
from gdflows.experiments.toys import sharp_minimum, tracked_steps  # noqa: E402
from gdflows.flows import principal  # noqa: E402
from gdflows.problems.toys import SharpDip  # noqa: E402

TOLS = (0.05, 0.2)  # relative to how far GD has moved: close, and still recognisably on the path


@dataclasses.dataclass(frozen=True)
class Problem:
    """A loss, a start, and how to evaluate its PF."""

    name: str
    loss: Callable
    theta0: jax.Array
    method: str = "auto"  # the PF's evaluation path (gdflows.flows.principal)

    def top_eigenvalue(self) -> float:
        """lambda_0 at theta_0 (dense: these problems are small)."""
        return float(jnp.linalg.eigvalsh(jax.hessian(self.loss)(self.theta0))[-1])


def sharp_dip() -> Problem:
    loss = SharpDip()
    x_min, _ = sharp_minimum(loss)
    return Problem("sharp dip", loss, x_min + 0.01)


def tanh_mlp(width: int = 2) -> Problem:
    problem = NetworkSetup(n_train=64, n_test=16, downsample=7, depth=1, width=width).build()
    return Problem(f"tanh MLP (D = {problem.theta0.size})", problem.loss, problem.theta0, method="lanczos")


BUILD = {"sharp_dip": lambda cfg: sharp_dip(), "tanh_mlp": lambda cfg: tanh_mlp(cfg.mlp_width)}


def relative_distances(pf_thetas, gd_thetas) -> np.ndarray:
    """r_n = |PF_n - GD_n| / max_{k<=n} |GD_k - GD_0| (0 at n = 0; NaN where the PF has no state)."""
    gd_thetas = np.asarray(gd_thetas)
    distance = np.linalg.norm(np.asarray(pf_thetas) - gd_thetas, axis=1)
    moved = np.maximum.accumulate(np.linalg.norm(gd_thetas - gd_thetas[0], axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(moved > 0, distance / moved, np.where(distance == 0, 0.0, np.inf))


def validity_rows(problem: Problem, h_lambdas, steps: int, **solve_kw) -> list[dict]:
    """One row per (h lambda_0, GD step n): the PF's distance to GD, relative, its imaginary part, the status."""
    lam0 = problem.top_eigenvalue()
    rows = []
    for h_lambda in track(h_lambdas, f"PF validity: {problem.name}"):
        lr = h_lambda / lam0
        gd = np.asarray(gdflows.gd(problem.loss, problem.theta0, lr, steps))
        sol = gdflows.integrate(
            principal(problem.loss, lr, method=problem.method), problem.theta0, steps=steps, **solve_kw
        )
        relative = relative_distances(sol.thetas, gd)
        imag = np.linalg.norm(np.imag(np.asarray(sol.thetas)), axis=1)
        rows += [
            {
                "problem": problem.name,
                "h_lambda": h_lambda,
                "lambda_0": lam0,
                "n": n,
                "distance": float(np.linalg.norm(sol.thetas[n] - gd[n])),
                "relative": float(relative[n]),
                "imag_norm": float(imag[n]),
                "status": str(sol.status),
                "field_evals": sol.num_field_evals,
            }
            for n in range(steps + 1)
        ]
    return rows


def followed(rows, tol: float) -> int:
    """The last GD step up to which the PF stays within ``tol`` (relative) of GD, over one (problem, h lambda_0)."""
    return tracked_steps([{"flow": "PF", "n": r["n"], "distance": r["relative"]} for r in rows], tol)["PF"]


def summary_rows(rows, tols=TOLS) -> list[dict]:
    """Per (problem, h lambda_0): steps followed at each tolerance, the solve's status and cost."""
    out = []
    for key in dict.fromkeys((r["problem"], r["h_lambda"]) for r in rows):
        sel = [r for r in rows if (r["problem"], r["h_lambda"]) == key]
        out.append(
            {
                "problem": key[0],
                "h_lambda": key[1],
                "edge_distance": key[1] - 2,
                **{f"followed_{tol:g}": followed(sel, tol) for tol in tols},
                "steps": sel[-1]["n"],
                "max_imag": float(np.nanmax([r["imag_norm"] for r in sel])),
                "status": sel[0]["status"],
                "field_evals": sel[0]["field_evals"],
            }
        )
    return out


def load_summary(folder: Path) -> list[dict]:
    """``pf_validity_summary.csv`` of a run folder, with its numbers as numbers."""
    text = ("problem", "status")
    return [
        {
            k: v if k in text else (int(v) if k.startswith("followed_") or k in ("steps", "field_evals") else float(v))
            for k, v in row.items()
        }
        for row in read_csv(Path(folder) / "pf_validity_summary.csv")
    ]


def figure(path: Path, summary, tols=TOLS) -> Path:
    """Steps followed against h lambda_0, per problem and tolerance, with the edge h lambda_0 = 2."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, name in enumerate(dict.fromkeys(s["problem"] for s in summary)):
        sel = [s for s in summary if s["problem"] == name]
        for tol, style in zip(tols, ("-", "--")):
            ax.plot(
                [s["h_lambda"] for s in sel],
                [s[f"followed_{tol:g}"] for s in sel],
                color=f"C{i}",
                ls=style,
                marker="o",
                label=f"{name}, within {tol:.0%}",
            )
    ax.axvline(1, color="grey", lw=0.8, ls=":", label="h lambda_0 = 1 (oscillation)")
    ax.axvline(2, color="black", lw=0.8, ls=":", label="h lambda_0 = 2 (the edge)")
    ax.set(
        title="Where the PF follows GD: steps within tolerance",
        xlabel="h lambda_0 at the start",
        ylabel="last GD step followed",
    )
    ax.legend(fontsize=7)
    return save_fitted(fig, path)


def findings(summary, tol: float) -> list[str]:
    """One sentence per problem, from the summary: up to which h lambda_0 the PF follows every step."""
    lines = []
    for name in dict.fromkeys(s["problem"] for s in summary):
        sel = [s for s in summary if s["problem"] == name]
        steps = sel[0]["steps"]
        whole = [s["h_lambda"] for s in sel if s[f"followed_{tol:g}"] >= steps]
        short = ", ".join(
            f"{s[f'followed_{tol:g}']} at {s['h_lambda']:g}" for s in sel if s[f"followed_{tol:g}"] < steps
        )
        reach = (
            f"all {steps} steps up to h lambda_0 = {max(whole):g}" if whole else f"all {steps} steps at no h lambda_0"
        )
        lines.append(
            f"- {name}: within {tol:.0%} of GD for {reach}" + (f"; steps followed: {short}." if short else ".")
        )
    return lines


def run(cfg: PFValidityConfig) -> Path:
    """``gdflows pf-validity``: the validity rows, their summary, a figure and REPORT.md in ``cfg.out``."""
    folder = Run.pending(cfg)
    if folder is None:
        return Path(cfg.out)
    run = folder.create()
    rows = []
    for problem in (BUILD[name](cfg) for name in cfg.problems):
        rows += validity_rows(problem, cfg.h_lambdas, cfg.steps, rtol=cfg.rtol, atol=cfg.atol, max_steps=cfg.max_steps)
    summary = summary_rows(rows)
    run.write_table("pf_validity", rows)
    run.write_table("pf_validity_summary", summary)
    figure(run.figure_path("pf_validity.png"), summary)
    run.write_text("REPORT.md", "# gdflows: where the PF follows GD\n\n" + markdown(summary, "figures/"))
    folder.finish()
    print(f"wrote {run.file('REPORT.md')}")
    return run.path


def markdown(summary, figures: str | None = None) -> str:
    """The table and findings; the figure embedded from ``figures`` (a folder prefix) when given."""
    tols = [k for k in summary[0] if k.startswith("followed_")]
    table = markdown_table(
        summary,
        ["problem", "h_lambda", "edge_distance", *tols, "steps", "max_imag", "status", "field_evals"],
        {"h_lambda": "{:g}", "edge_distance": "{:+.2f}", "max_imag": "{:.1e}"},
    )
    text = (
        "For each h lambda_0 (top Hessian eigenvalue at the start), GD and the PF run from the same start; "
        "`followed_<tol>` is the last GD step up to which the PF stays within tol of GD, relative to the farthest "
        "GD has moved from the start; `edge_distance` is h lambda_0 - 2; `max_imag` the largest |Im theta| of the "
        "PF's state at t = n h (0 on a quadratic, where the state is complex only between GD steps); a solve "
        "that stopped (`status`) counts as lost from there.\n\n"
        f"{table}\n\n"
        + "\n".join(line for k in tols for line in findings(summary, float(k.removeprefix("followed_"))))
        + "\n"
    )
    return text + (f"\n![pf validity]({figures}pf_validity.png)\n" if figures is not None else "")
