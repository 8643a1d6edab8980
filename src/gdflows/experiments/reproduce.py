"""`gdflows reproduce`: each claim of the paper beside our own measured number.

Every number in REPRODUCTION.md is computed by the run that writes it, and
the report holds no wall-clock times (those go to TIMINGS.md beside it), so
the same command on the same software writes the same report: ``--check
docs/reproduction`` reruns it and fails on any difference from the
committed copy. The sub-experiments run into sub-folders of the run folder
(so an interrupted reproduction resumes the resumable parts), and a claim
table is assembled from their tables. The run folder records a hash of
gdflows' source and the numerical stack's versions (:func:`software`), so a
folder written by other code is refused instead of resumed into a report.

Claims and sections: each entry of :data:`CLAIMS` is a function of a
:class:`Context` returning claim rows (built by ``_claim``, the verdict from
:mod:`gdflows.experiments.verdicts`); each entry of :data:`SECTIONS` returns a
Markdown section placed after the claim table. Adding a claim is adding a
function to the list.

Determinism. On one machine with one software stack the report and its
figures come out byte for byte (runs are single-process, JAX's CPU results do
not depend on the thread count or the load, no dict/set order reaches the
output, every random key is fixed). Across machines they need not: the DAL
runs are float32, and DAL-2 is chaotic there (a relative change of 1e-7 in
theta_0 moves a seed's final loss by up to 0.07; 1e-15 in float64 by 0.01),
while float32 rounding depends on the CPU (on one machine, limiting XLA to
AVX instead of AVX-512 instructions changed results in the last bits and the
DAL-2 mean loss from 0.113 to 0.116). Regenerate the committed report on the
machine that checks it.

Scales (:data:`SCALES`, a :class:`Scale` each):

* ``cpu`` (default): a tanh MLP on 1,000 bundled MNIST images; about 4
  minutes on 2 cores.
* ``paper``: for an accelerator, :class:`~gdflows.experiments.paper_scale.PaperScale`:
  ``gdflows eos-conv --size accelerator`` (VGG- and ResNet-style nets on
  5,000 Fashion-MNIST images, from Debian's package folder or ``--data-dir``)
  and ``gdflows compare-optimizers --scale full``, assembled into
  PAPER_SCALE.md instead of the claim table (:mod:`gdflows.experiments.paper_scale`).
* ``smoke``: the same pipeline on tiny runs, for tests; its verdicts mean
  nothing.
"""

from __future__ import annotations

import dataclasses
import filecmp
import time
from collections.abc import Callable
from pathlib import Path

from gdflows.errors import GDFlowsError
from gdflows.experiments import paper_scale, pf_validity
from gdflows.experiments.configs import CentralConfig, PFValidityConfig, ReproduceConfig, changed_flags
from gdflows.experiments.drift import DriftConfig, correlations, drift_verdict
from gdflows.experiments.eos import eos_verdicts
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.optimizers.compare import CompareOptimizersConfig
from gdflows.experiments.optimizers.report import seed_stats
from gdflows.experiments.paper_scale import PaperScale
from gdflows.experiments.quadratic import quadratic_tables, summary_rows
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.runs import Run, atomic_write_bytes, read_csv
from gdflows.experiments.toys import (
    DIP_TOL,
    EXPECTED_ORDERS,
    ORDER_TOL,
    dip_verdict,
    fitted_slopes,
    one_step_errors,
    saddle_tables,
    sharp_dip_tables,
    tracked_steps,
)
from gdflows.experiments.train import TrainConfig
from gdflows.experiments.verdicts import (
    DRIFT_BAND,
    central_tracks,
    cost_ratio,
    each,
    escape_time_matches,
    only_one_follows,
    stability_tradeoff,
)

__all__ = ["ReproduceConfig", "run", "reproduce", "scale_plan", "check_copy", "compare_export", "export"]

DAL_METHODS = ("dal_p0.5_hvp", "dal_p1_hvp", "dal_p2_hvp", "gd_lr0.1")
EXACT = 1e-9  # "follows GD exactly": the flows are solved at rtol 1e-12
APART = 1e-2  # a flow that ends farther than this from GD does not follow it


@dataclasses.dataclass(frozen=True)
class EosRun:
    """Full-batch GD on ``net`` at each rate in ``lrs`` for ``steps`` steps, diagnosed through the PF."""

    net: NetworkSetup
    lrs: tuple[float, ...]
    steps: int

    @property
    def log_every(self) -> int:
        """Diagnose about 100 times per run."""
        return max(1, self.steps // 100)


@dataclasses.dataclass(frozen=True)
class Scale:
    """The network sub-runs of one ``--scale`` (the quadratic and toy claims are the same at every scale)."""

    eos: tuple[EosRun, ...]
    drift_net: NetworkSetup
    drift_lrs: tuple[float, ...]
    drift_steps: int
    dal_scale: float  # compare-optimizers' scale (steps and training-set sizes)
    validity: PFValidityConfig = dataclasses.field(default_factory=PFValidityConfig)  # where the PF follows GD
    central: CentralConfig = dataclasses.field(default_factory=CentralConfig)  # the central flow vs GD

    @property
    def drift_every(self) -> int:
        """Measure the drift about 20 times per rate."""
        return max(1, self.drift_steps // 20)

    def nets(self) -> list[NetworkSetup]:
        return [e.net for e in self.eos] + [self.drift_net]


SCALES = {
    "cpu": Scale(
        eos=(EosRun(NetworkSetup(), (0.12, 0.15), 2000),),
        drift_net=NetworkSetup(),
        drift_lrs=(0.01, 0.03, 0.1, 0.15),
        drift_steps=600,
        dal_scale=1.0,
    ),
    "paper": PaperScale(),
    "smoke": Scale(
        eos=(EosRun(NetworkSetup(n_train=64, downsample=4, width=8), (0.12,), 40),),
        drift_net=NetworkSetup(n_train=64, downsample=4, width=8),
        drift_lrs=(0.03, 0.1),
        drift_steps=20,
        dal_scale=0.1,
        validity=PFValidityConfig(h_lambdas=(0.5, 2.5), steps=3, problems=("sharp_dip",)),
        central=CentralConfig(
            lr=0.38,
            steps=160,
            k=3,
            window=41,
            sharpness_every=40,
            chunk=80,
            net=NetworkSetup(n_train=64, classes=(0, 1, 2, 3), downsample=7, depth=1, width=2, activation="tanh"),
        ),
    ),
}


def scale_plan(scale: str, data_dir: Path | None = None) -> Scale | PaperScale:
    """The plan named ``scale``; ``data_dir`` (the Fashion-MNIST folder) applies to the paper plan."""
    if scale not in SCALES:
        raise GDFlowsError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    plan = SCALES[scale]
    if isinstance(plan, PaperScale) and data_dir is not None:
        net = dataclasses.replace(plan.eos.net, data_dir=Path(data_dir))
        return dataclasses.replace(plan, eos=dataclasses.replace(plan.eos, net=net))
    return plan


def net_flags(net: NetworkSetup, default: NetworkSetup | None = None) -> str:
    """The command-line flags that set ``net`` (those differing from ``default``, the default NetworkSetup)."""
    return changed_flags(net, NetworkSetup() if default is None else default, "--net.")


@dataclasses.dataclass
class Context:
    """What a claim function gets: the run folder (sub-runs go in sub-folders), the plan of this
    ``--scale``, and a dict for wall-clock facts (they go to TIMINGS.md, never into the report)."""

    run: Run
    plan: Scale
    timings: dict[str, str] = dataclasses.field(default_factory=dict)


def _claim(claim, experiment, command, ours, paper, agrees) -> dict:
    return {
        "claim": claim,
        "experiment": experiment,
        "command": command,
        "ours": ours,
        "paper": paper,
        "agrees": str(agrees),
    }


def quadratic_claims(ctx: Context) -> list[dict]:
    dist, _ = quadratic_tables(substeps=1)
    s = {(r["lr"], r["flow"]): r for r in summary_rows(dist)}
    lrs = sorted({lr for lr, _ in s})
    pf = max(s[(lr, "PF")]["max_distance"] for lr in lrs)
    cmd = "gdflows quadratic"
    others = lambda lr, key: {f: s[(lr, f)][key] for f in ("NGF", "IGR")}  # noqa: E731
    return [
        _claim(
            "PF follows GD exactly on quadratics, for every h",
            f"reference quadratic, h = {', '.join(f'{lr:g}' for lr in lrs)}",
            cmd,
            f"max |PF - GD| = {pf:.1e}",
            "~1e-13 (exact up to the solver)",
            each({f"h = {lr:g}": s[(lr, "PF")]["max_distance"] <= EXACT for lr in lrs}),
        ),
        _claim(
            "Only the PF captures divergence (h lambda > 2)",
            "h = 1.05, 5 steps",
            cmd,
            f"PF {s[(1.05, 'PF')]['final_distance']:.1e}, NGF {s[(1.05, 'NGF')]['final_distance']:.3f}, "
            f"IGR {s[(1.05, 'IGR')]['final_distance']:.3f}",
            "NGF/IGR 0.564, PF ~0",
            only_one_follows("PF", s[(1.05, "PF")]["final_distance"], others(1.05, "final_distance"), EXACT, APART),
        ),
        _claim(
            "Only the PF captures oscillation (1 < h lambda < 2)",
            "h = 0.9, 20 steps",
            cmd,
            f"PF {s[(0.9, 'PF')]['max_distance']:.1e}, NGF {s[(0.9, 'NGF')]['max_distance']:.3f} (max over n)",
            "NGF/IGR slide to the minimum",
            only_one_follows("PF", s[(0.9, "PF")]["max_distance"], others(0.9, "max_distance"), EXACT, APART),
        ),
    ]


def toy_claims(ctx: Context) -> list[dict]:
    dip, _, facts = sharp_dip_tables(steps=12, substeps=1)
    pf_tracked = tracked_steps(dip, DIP_TOL)["PF"]
    pf_status = next(r["status"] for r in dip if r["flow"] == "PF")
    stay = {f: next(r["distance"] for r in dip if r["flow"] == f and r["n"] == 12) for f in ("NGF", "IGR")}
    _, _, times = saddle_tables(steps=40, substeps=4)
    t = {r["flow"]: r["escape_time"] for r in times}
    slopes = fitted_slopes(one_step_errors())
    return [
        _claim(
            "The PF captures escape from a sharp minimum",
            f"sharp Gaussian dip, h lambda = {facts['h_lambda']}, {facts['steps']} steps",
            "gdflows toys",
            f"GD leaves the dip at step {facts['gd_escape_step']} and ends at x = {facts['gd_final']:.3f} (sharp min "
            f"{facts['x_sharp']:.3f}); PF within {DIP_TOL:g} of GD up to step {pf_tracked}, solve {pf_status}; NGF and "
            f"IGR stay in the sharp minimum, {stay['NGF']:.2f} and {stay['IGR']:.2f} from GD at the end",
            "PF follows GD out of the sharp minimum",
            dip_verdict(dip, facts),
        ),
        _claim(
            "The PF captures escape from saddles (slower than NGF)",
            "E = x^2/2 - y^2/2 + y^4/4",
            "gdflows toys",
            f"escape time GD {t['GD']:.3f}, PF {t['PF']:.3f}, NGF {t['NGF']:.3f}, IGR {t['IGR']:.3f}",
            "PF follows GD",
            escape_time_matches(t["PF"], t["GD"], t["NGF"]),
        ),
        _claim(
            "Error orders: NGF 2, IGR 3, third-order 4, PF 3, PF+NP 4",
            "one-step error vs h, smooth cubic",
            "gdflows toys",
            ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()),
            "2, 3, 4, 3, 4",
            each({k: abs(slopes[k] - e) <= ORDER_TOL for k, e in EXPECTED_ORDERS.items()}),
        ),
    ]


def _eos_claims(ctx: Context, eos: EosRun) -> list[dict]:
    out = []
    net = eos.net
    for lr in eos.lrs:
        folder = f"train_lr{lr}" if net == NetworkSetup() else f"train_{net.model}_lr{lr}"
        cfg = TrainConfig(out=ctx.run.path / folder, net=net, lr=lr, steps=eos.steps, log_every=eos.log_every)
        cfg.run()
        v = eos_verdicts(read_csv(cfg.out / "metrics.csv"))
        out.append(
            _claim(
                f"Edge of stability explained by lambda_0 vs 2/h and Re(sc_0) (h = {lr})",
                f"full-batch GD, {net.activation} {net.model} on {net.dataset}, {eos.steps} steps",
                f"gdflows train --lr {lr} --steps {eos.steps} --log-every {eos.log_every}{net_flags(net)}",
                f"lambda_0 rose and hovers: {v['edge_of_stability']}; PF dE/dt sign agrees on "
                f"{100 * v['sign_agreement']:.1f}% of {v['steps_above_noise']} steps (always the majority sign: "
                f"{100 * v['majority_baseline']:.1f}%)",
                "lambda_0 -> 2/h; loss rises when Re(sc_0) > 0",
                v["verdict"],
            )
        )
    return out


def eos_claims(ctx: Context) -> list[dict]:
    return [c for eos in ctx.plan.eos for c in _eos_claims(ctx, eos)]


def drift_claims(ctx: Context) -> list[dict]:
    plan = ctx.plan
    cfg = DriftConfig(
        out=ctx.run.path / "drift",
        net=plan.drift_net,
        lrs=plan.drift_lrs,
        steps=plan.drift_steps,
        every=plan.drift_every,
    )
    cfg.run()
    c = correlations(read_csv(cfg.out / "drift.csv"))
    return [
        _claim(
            "|Hg| tracks the per-iteration drift",
            f"drift vs (h^2/2)|Hg| over {len(plan.drift_lrs)} rates and training time",
            f"gdflows drift --lrs {' '.join(map(str, plan.drift_lrs))} --steps {plan.drift_steps} "
            f"--every {plan.drift_every}"
            f"{net_flags(plan.drift_net)}",
            f"Pearson r (logs) = {c['pearson_log']:.4f} over {c['pairs']} pairs; median drift / prediction "
            f"{c['median_ratio']:.3f} (band [{DRIFT_BAND[0]:g}, {DRIFT_BAND[1]:g}])",
            "strong correlation",
            drift_verdict(c),
        )
    ]


def _central_flags(cfg: CentralConfig) -> str:
    default = CentralConfig()
    return changed_flags(cfg, default, skip=("out", "net")) + net_flags(cfg.net, default.net)


def central_claims(ctx: Context) -> list[dict]:
    """The central flow (Cohen et al.) against time-averaged GD, from initialisation (``gdflows central``)."""
    cfg = dataclasses.replace(ctx.plan.central, out=ctx.run.path / "central")
    cfg.run()
    m = read_csv(cfg.out / "central_metrics.csv")[0]
    judged = {r["claim"].split(":")[0]: r["verdict"] == "yes" for r in read_csv(cfg.out / "central_claims.csv")}
    second = m["second_at_edge"]
    ours = (
        f"averaged GD loss within 5% of the prediction on {float(m['loss_fraction']):.1%} of steps after onset "
        f"(step {m['onset']}); |h lambda_0/2 - 1| <= {float(m['hold']):.1e} at EoS; distance to GD "
        f"{float(m['distance_ratio']):.3f}x gradient flow's; HVPs per step "
        f"{float(m['cost_hvps_one']):.1f} (one eigenvalue at 2/h), {float(m['cost_hvps_two']):.1f} (two, from step "
        f"{second if second not in ('', None) else 'never'})"
    )
    return [
        _claim(
            "The central flow tracks GD's time average at the edge of stability (Cohen et al.)",
            f"{cfg.net.activation} MLP, h = {cfg.lr}, {cfg.steps} GD steps from initialisation, window {cfg.window}",
            f"gdflows central{_central_flags(cfg)}",
            ours,
            "loss within a few %, lambda_0 at 2/h, far closer than gradient flow",
            central_tracks(judged["loss"], judged["sharpness"], judged["trajectory"]),
        )
    ]


def _dal_stats(row) -> str:
    st = seed_stats(row)
    loss = "" if st.diverged == st.seeds else f", loss {st.mean:.3f} +- {st.std:.3f}"
    return f"diverged {st.diverged}/{st.seeds}{loss}"


def dal_claims(ctx: Context) -> list[dict]:
    """The DAL claims; the wall-clock ratio goes to ``ctx.timings``."""
    cfg = CompareOptimizersConfig(
        out=ctx.run.path / "dal", models=("mlp",), regimes=("full",), methods=DAL_METHODS, scale=ctx.plan.dal_scale
    )
    cfg.run()
    s = {r["method"]: r for r in read_csv(cfg.out / "summary.csv")}
    row = {p: s[f"dal_p{p}_hvp"] for p in ("0.5", "1", "2")}
    flops = float(s["dal_p1_hvp"]["flops_per_step"]) / float(s["gd_lr0.1"]["flops_per_step"])
    ms = float(s["dal_p1_hvp"]["ms_per_step"]) / float(s["gd_lr0.1"]["ms_per_step"])
    ctx.timings["DAL-1 (hvp) / GD, wall time per step"] = f"{ms:.2f}x"
    cmd = (  # --scale always: a number keeps the MNIST-subset comparison (the default is the at-scale one)
        f"gdflows compare-optimizers --models mlp --regimes full --methods {' '.join(DAL_METHODS)} "
        f"--scale {ctx.plan.dal_scale:g}"
    )
    return [
        _claim(
            "DAL trades stability for performance through p",
            f"MLP, full batch, {cfg.seeds} seeds, float32; loss: mean +- sample std of the seeds that did not diverge",
            cmd,
            "; ".join(f"p={p}: {_dal_stats(r)}" for p, r in row.items()),
            "larger p more stable, smaller p faster",
            stability_tradeoff({float(p): seed_stats(r) for p, r in row.items()}),
        ),
        _claim(
            "DAL's cost: about one extra gradient per step",
            "same run, FLOPs of one compiled step (XLA)",
            cmd,
            f"DAL-1 (hvp) / GD = {flops:.2f}x FLOPs per step",
            "one HVP per step",
            cost_ratio(flops),  # 2 = exactly one extra gradient
        ),
    ]


def pf_validity_section(ctx: Context) -> str:
    """Where the PF follows GD on non-quadratic losses (:mod:`gdflows.experiments.pf_validity`)."""
    cfg = dataclasses.replace(ctx.plan.validity, out=ctx.run.path / "pf_validity")
    cfg.run()
    flags = changed_flags(cfg, PFValidityConfig(), skip=("out",))
    return f"## Where the PF follows GD\n\nCommand: `gdflows pf-validity{flags}`. " + pf_validity.markdown(
        pf_validity.load_summary(cfg.out)
    )


# The claims of the report, in order: each takes the Context and returns claim rows
# (``_claim``); a new claim is one more function here.
CLAIMS: list[Callable[[Context], list[dict]]] = [
    quadratic_claims,
    toy_claims,
    eos_claims,
    drift_claims,
    dal_claims,
    central_claims,
]
# Report sections after the claim table: each takes the Context and returns Markdown
# (figures under the run folder's ``<sub-run>/figures/`` are embedded below it).
SECTIONS: list[Callable[[Context], str]] = [pf_validity_section]


def run(cfg: ReproduceConfig) -> Path:
    """``gdflows reproduce``: every claim into ``cfg.out`` (unless already there), then ``--docs`` / ``--check``."""
    plan = scale_plan(cfg.scale, cfg.data_dir)
    folder = Run.pending(cfg)  # the folder holds cfg.identity(): where to copy to is not part of the run
    paper = isinstance(plan, PaperScale)
    name = paper_scale.REPORT if paper else "REPRODUCTION.md"
    if folder is not None:
        if paper:
            paper_scale.reproduce(folder.create(), plan)
        else:
            reproduce(folder.create(), cfg.scale, plan)
        folder.finish(name)
    if cfg.docs is not None:
        export(Path(cfg.out), Path(cfg.docs), name)
    if cfg.check is not None:
        check_copy(Path(cfg.out), Path(cfg.check), name)
    return Path(cfg.out)


def reproduce(run: Run, scale: str, plan: Scale) -> None:
    """Every claim and section of ``plan`` into ``run``: claims.csv, REPRODUCTION.md, TIMINGS.md."""
    start = time.perf_counter()
    ctx = Context(run, plan)
    claims = [c for claim_fn in CLAIMS for c in claim_fn(ctx)]
    sections = [section(ctx) for section in SECTIONS]
    run.write_table("claims", claims)
    run.write_text("REPRODUCTION.md", report(claims, scale, sections, _figures(run.path)))
    ctx.timings["whole reproduction, minutes"] = f"{(time.perf_counter() - start) / 60:.1f}"
    run.write_text(
        "TIMINGS.md",
        "# Wall-clock times of this run (not part of the report)\n\n"
        + markdown_table([{"what": k, "value": v} for k, v in ctx.timings.items()], ["what", "value"])
        + "\n",
    )
    print(f"wrote {run.path / 'REPRODUCTION.md'} ({ctx.timings['whole reproduction, minutes']} min)")


DETERMINISM = (
    "The same command with the same software on the same machine writes this report and its figures byte for "
    "byte (`--check` demands it), and `gdflows reproduce` pins XLA's CPU instruction set to AVX2 on x86-64, so "
    "AVX2 and AVX-512 machines write the same bytes. Elsewhere (a CPU without FMA, another architecture) the "
    "numbers of the chaotic runs may differ: the DAL runs are float32, and their p = 2 runs amplify a relative "
    "change of 1e-7 in the start into a change of up to 0.07 in a seed's final loss (limiting XLA to AVX, "
    "without FMA, moves the p = 2 mean loss from 0.113 to 0.116); the edge-of-stability runs amplify float64 "
    "rounding the same way, more slowly. "
    "The verdicts use the seeds' spread, so such differences should move the numbers, not the answers."
)


def report(claims: list[dict], scale: str, sections: list[str], figures: list[Path]) -> str:
    return (
        "# Reproduction of Rosca, Wu, Qin & Dherin (TMLR 2023)\n\n"
        f"Written by `gdflows reproduce --scale {scale}`; every number below is computed by that run "
        "(sub-runs and their figures are in the run folder's sub-folders, wall-clock times in its "
        "TIMINGS.md), and every verdict in `agrees` by a rule of `gdflows.experiments.verdicts` "
        "(yes, partly, no, or inconclusive where the seeds' spread cannot decide).\n\n"
        + markdown_table(claims, ["claim", "experiment", "command", "ours", "paper", "agrees"])
        + "\n\n"
        + DETERMINISM
        + "\n\n"
        + "".join(f"{section}\n" for section in sections)
        + "## Figures\n\n"
        + "\n".join(f"![{f.stem}]({f})" for f in figures)
        + "\n"
    )


def _figures(folder: Path) -> list[Path]:
    """Figures of the sub-runs, relative to the run folder."""
    return sorted(p.relative_to(folder) for p in folder.glob("*/figures/*.png"))


def _exported(folder: Path, report: str) -> list[Path]:
    return [Path(report), *_figures(folder)]


def _stale(run_folder: Path, dest: Path, ours: list[Path]) -> list[Path]:
    """Figures in ``dest`` under this run's sub-run folders that this run did not produce (figures of
    another report in ``dest``, e.g. PAPER_SCALE.md's beside REPRODUCTION.md, are not this run's)."""
    subs = {p.name for p in run_folder.iterdir() if p.is_dir()}
    return [rel for rel in _figures(dest) if rel.parts[0] in subs and rel not in set(ours)]


def export(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> None:
    """Copy the report (REPRODUCTION.md, or PAPER_SCALE.md at the paper scale) and the figures it embeds to
    ``dest`` (same relative paths); remove figures ``dest`` holds that this run did not produce, so ``dest``
    then passes :func:`check_copy`."""
    ours = _exported(run_folder, report)
    for rel in ours:
        atomic_write_bytes(dest / rel, (run_folder / rel).read_bytes())
    for rel in _stale(run_folder, dest, ours):
        (dest / rel).unlink()


def compare_export(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> list[str]:
    """The exported files that differ from (or are missing in) ``dest``, and figures only ``dest`` has
    (under this run's sub-run folders)."""
    ours = _exported(run_folder, report)
    differ = [
        str(rel)
        for rel in ours
        if not (dest / rel).is_file() or not filecmp.cmp(run_folder / rel, dest / rel, shallow=False)
    ]
    extra = [f"{rel} (not produced)" for rel in _stale(run_folder, dest, ours)]
    return differ + extra


def check_copy(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> None:
    """Raise unless ``dest`` holds exactly the report and figures of ``run_folder``."""
    differing = compare_export(run_folder, dest, report)
    if differing:
        raise GDFlowsError(
            f"the report differs from {dest} in: {', '.join(differing)}; "
            f"diff {run_folder} against it, or regenerate it with --docs {dest}"
        )
    print(f"{dest} matches this run")
