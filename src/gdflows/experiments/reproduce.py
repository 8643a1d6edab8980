"""`gdflows reproduce`: each claim of the paper beside our own measured number.

Every number in REPRODUCTION.md is computed by the run that writes it, and
the report holds no wall-clock times (those go to TIMINGS.md beside it).
``--check docs/reproduction`` reruns it and compares it with the committed
copy: the claims and their verdicts exactly, and each number behind a claim
(numbers.csv, written from the :class:`~gdflows.experiments.report.tolerances.Measured`
numbers each claim declares) within the tolerance declared with it. The
sub-experiments run into sub-folders of the run folder (so an interrupted
reproduction resumes the resumable parts), and a claim table is assembled
from their tables, which are exported beside the report. The run folder
records a hash of gdflows' source and the numerical stack's versions
(:func:`software`), so a folder written by other code is refused instead of
resumed into a report.

Claims and sections: each entry of :data:`CLAIMS` is a function of a
:class:`Context` returning claim rows (built by ``_claim``, the verdict from
:mod:`gdflows.experiments.verdicts`); each entry of :data:`SECTIONS` returns a
Markdown section placed after the claim table. Adding a claim is adding a
function to the list.

Determinism. On one machine with one software stack the report and its
figures come out byte for byte (runs are single-process, JAX's CPU results do
not depend on the thread count or the load, no dict/set order reaches the
output, every random key is fixed). Across machines they need not: float
rounding depends on the CPU, and the chaotic runs (DAL-2 in float32, the
edge-of-stability runs) amplify it, which is why ``--check`` compares
verdicts exactly and numbers within tolerances, not bytes.

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

import numpy as np

from gdflows.data import downsample, load_dataset
from gdflows.errors import GDFlowsError
from gdflows.experiments import paper_scale, pf_validity
from gdflows.experiments.configs import CentralConfig, PFValidityConfig, ReproduceConfig, changed_flags
from gdflows.experiments.drift import DriftConfig, drift_verdict
from gdflows.experiments.drift import summary_rows as drift_summary
from gdflows.experiments.eos import eos_verdicts
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.optimizers.compare import CompareOptimizersConfig
from gdflows.experiments.optimizers.report import seed_stats
from gdflows.experiments.optimizers.zoo import method
from gdflows.experiments.paper_scale import PaperScale
from gdflows.experiments.quadratic import quadratic_tables, summary_rows
from gdflows.experiments.report import tolerances
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.runs import Run, atomic_write_bytes, read_csv
from gdflows.experiments.report.tolerances import Measured
from gdflows.experiments.steps import step_flops, step_scan
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
    combine,
    cost_ratio,
    each,
    escape_time_matches,
    only_one_follows,
    stability_tradeoff,
)
from gdflows.problems.network import network_problem

__all__ = ["ReproduceConfig", "run", "reproduce", "scale_plan", "check_copy", "compare_export", "export"]

DAL_METHODS = ("dal_p0.5_hvp", "dal_p1_hvp", "dal_p2_hvp", "gd_lr0.1")
EXACT = 1e-9  # "follows GD exactly": the flows are solved at rtol 1e-12
APART = 1e-2  # a flow that ends farther than this from GD does not follow it
DISTANCE_TOL = 1e-10  # distances of float64 solves at rtol 1e-12, and float64 GD: rounding moves them far less
SOLVER_TOL = 1e-6  # escape times (solves at the default tolerance) and fitted slopes of one-step errors
FLOWS = ("PF", "NGF", "IGR")  # the quadratic claims' flows
NUMBERS = "numbers"  # the key of a claim's Measured numbers
CLAIMS_CSV, NUMBERS_CSV = "claims.csv", "numbers.csv"
# Tables up to this size go beside the report (the EoS runs' 401-step logs are ~240 kB), larger per-step logs
# stay in the run folder (central_steps.csv, ~560 kB); far from both, so every CPU exports the same files.
EXPORT_MAX_BYTES = 400_000
R_TOL = 0.005  # a correlation over 20-80 points of float64 runs, some at the edge of stability
EDGE = "a float64 GD run at the edge of stability (chaotic): within 5-10% of itself"
STATISTIC = "a statistic over the points of float64 runs, some at the edge of stability"


@dataclasses.dataclass(frozen=True)
class EosRun:
    """Full-batch GD on ``net`` at each rate in ``lrs`` for ``steps`` steps, diagnosed through the PF."""

    net: NetworkSetup
    lrs: tuple[float, ...]
    steps: int
    # The sign rule needs the baselines to err often enough that a predictor could beat them (5 steps at
    # least): the one-step quadratic model errs at ~5% of the MLP's steps, so 100 diagnoses left its
    # verdict to the chaotic run (at h = 0.15: 4 errors in one run, 5 in a rerun); 400 give 16-21.
    diagnoses: int = 100

    @property
    def log_every(self) -> int:
        """Diagnose about ``diagnoses`` times per run."""
        return max(1, self.steps // self.diagnoses)


@dataclasses.dataclass(frozen=True)
class Scale:
    """The network sub-runs of one ``--scale`` (the quadratic and toy claims are the same at every scale)."""

    eos: tuple[EosRun, ...]
    drift_net: NetworkSetup
    drift_lrs: tuple[float, ...]
    drift_steps: int
    dal_scale: float  # compare-optimizers' scale (steps and training-set sizes)
    dal_seeds: int = 3  # seeds per DAL p: enough that the chaotic p = 2 runs give one verdict on every CPU
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
        eos=(EosRun(NetworkSetup(), (0.12, 0.15), 2000, diagnoses=400),),
        drift_net=NetworkSetup(),
        drift_lrs=(0.01, 0.03, 0.1, 0.15),
        drift_steps=600,
        dal_scale=1.0,
        dal_seeds=12,
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


def _claim(claim, experiment, command, ours, paper, agrees, numbers: dict[str, Measured]) -> dict:
    """A claim row; ``numbers`` are the values behind ``ours`` with their tolerances (numbers.csv)."""
    return {
        "claim": claim,
        "experiment": experiment,
        "command": command,
        "ours": ours,
        "paper": paper,
        "agrees": str(agrees),
        NUMBERS: numbers,
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
            {"max |PF - GD|": tolerances.solver(pf, DISTANCE_TOL)},
        ),
        _claim(
            "Only the PF captures divergence (h lambda > 2)",
            "h = 1.05, 5 steps",
            cmd,
            f"PF {s[(1.05, 'PF')]['final_distance']:.1e}, NGF {s[(1.05, 'NGF')]['final_distance']:.3f}, "
            f"IGR {s[(1.05, 'IGR')]['final_distance']:.3f}",
            "NGF/IGR 0.564, PF ~0",
            only_one_follows("PF", s[(1.05, "PF")]["final_distance"], others(1.05, "final_distance"), EXACT, APART),
            {f"{f} final distance": tolerances.solver(s[(1.05, f)]["final_distance"], DISTANCE_TOL) for f in FLOWS},
        ),
        _claim(
            "Only the PF captures oscillation (1 < h lambda < 2)",
            "h = 0.9, 20 steps",
            cmd,
            f"PF {s[(0.9, 'PF')]['max_distance']:.1e}, NGF {s[(0.9, 'NGF')]['max_distance']:.3f} (max over n)",
            "NGF/IGR slide to the minimum",
            only_one_follows("PF", s[(0.9, "PF")]["max_distance"], others(0.9, "max_distance"), EXACT, APART),
            {f"{f} max distance": tolerances.solver(s[(0.9, f)]["max_distance"], DISTANCE_TOL) for f in FLOWS},
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
            {
                "GD escape step": tolerances.exact(facts["gd_escape_step"]),
                "GD final x": tolerances.solver(facts["gd_final"], DISTANCE_TOL),
                "sharp minimum x": tolerances.solver(facts["x_sharp"], DISTANCE_TOL),
                "PF tracked steps": tolerances.exact(pf_tracked),
                **{f"{f} final distance": tolerances.solver(d, DISTANCE_TOL) for f, d in stay.items()},
            },
        ),
        _claim(
            "The PF captures escape from saddles (slower than NGF)",
            "E = x^2/2 - y^2/2 + y^4/4",
            "gdflows toys",
            f"escape time GD {t['GD']:.3f}, PF {t['PF']:.3f}, NGF {t['NGF']:.3f}, IGR {t['IGR']:.3f}",
            "PF follows GD",
            escape_time_matches(t["PF"], t["GD"], t["NGF"]),
            {f"{f} escape time": tolerances.solver(v, SOLVER_TOL) for f, v in t.items()},
        ),
        _claim(
            "Error orders: NGF 2, IGR 3, third-order 4, PF 3, PF+NP 4",
            "one-step error vs h, smooth cubic",
            "gdflows toys",
            ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()),
            "2, 3, 4, 3, 4",
            each({k: abs(slopes[k] - e) <= ORDER_TOL for k, e in EXPECTED_ORDERS.items()}),
            {f"{k} order": tolerances.solver(v, SOLVER_TOL) for k, v in slopes.items()},
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
                f"{100 * v['sign_agreement']:.1f}% of {v['steps_above_noise']} steps (one-step quadratic model: "
                f"{100 * v['quadratic_agreement']:.1f}%; always the majority sign: "
                f"{100 * v['majority_baseline']:.1f}%); PF better than every baseline: {v['sign'].answer}",
                "lambda_0 -> 2/h; loss rises when Re(sc_0) > 0",
                v["verdict"],
                {
                    "sign agreement": tolerances.binomial(v["sign_agreement"], v["steps_above_noise"]),
                    "quadratic model agreement": tolerances.binomial(v["quadratic_agreement"], v["steps_above_noise"]),
                    "majority baseline": tolerances.binomial(v["majority_baseline"], v["steps_above_noise"]),
                    "steps above noise": tolerances.relative(
                        v["steps_above_noise"], 0.1, "a count of a chaotic run: within 10%"
                    ),
                },
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
    rows = read_csv(cfg.out / "drift.csv")
    *per_rate, c = drift_summary(rows)  # per learning rate, then pooled over all rows
    return [
        _claim(
            "|Hg| tracks the per-iteration drift",
            f"drift vs (h^2/2)|Hg| over {len(plan.drift_lrs)} rates and training time",
            f"gdflows drift --lrs {' '.join(map(str, plan.drift_lrs))} --steps {plan.drift_steps} "
            f"--every {plan.drift_every}"
            f"{net_flags(plan.drift_net)}",
            f"Pearson r (logs) = {c['pearson_log']:.4f} over {c['pairs']} pairs (per rate: "
            + ", ".join(f"h = {r['lr']}: {r['pearson_log']:.4f}" for r in per_rate)
            + f"); median drift / prediction {c['median_ratio']:.3f} (band [{DRIFT_BAND[0]:g}, {DRIFT_BAND[1]:g}])",
            "strong correlation",
            drift_verdict(c),
            {
                "pairs": tolerances.exact(c["pairs"]),
                "pearson r (logs)": Measured(c["pearson_log"], R_TOL, STATISTIC),
                "median drift / prediction": tolerances.relative(c["median_ratio"], 0.01, STATISTIC),
                **{f"pearson r (logs), h = {r['lr']}": Measured(r["pearson_log"], R_TOL, STATISTIC) for r in per_rate},
            },
        )
    ]


def _central_numbers(m: dict, window: int) -> dict[str, Measured]:
    """The central-flow row's numbers that the run measured (a second eigenvalue may never reach the edge); the
    loss fraction's n is the number of averaging windows (``window`` steps) at the edge, not of steps."""
    given = lambda key: m.get(key) not in ("", None, "None", "nan")  # noqa: E731
    out = {"hold": Measured(float(m["hold"]), 1e-5, "the held eigenvalue's solver tolerance")} if given("hold") else {}
    if given("onset"):
        out["onset step"] = tolerances.relative(int(m["onset"]), 0.05, EDGE)
        windows = max(int(m["steps_at_eos"]) // window, 1)  # steps inside one averaging window are not independent
        rate = tolerances.binomial(float(m["loss_fraction"]), windows)
        out["loss fraction"] = Measured(rate.value, rate.tol, f"{rate.basis} windows of {window} steps")
    for key in ("distance_ratio", "cost_hvps_one", "cost_hvps_two"):
        if given(key):
            out[key] = tolerances.relative(float(m[key]), 0.1, EDGE)
    return out


def _central_flags(cfg: CentralConfig) -> str:
    default = CentralConfig()
    return changed_flags(cfg, default, skip=("out", "net")) + net_flags(cfg.net, default.net)


def central_claims(ctx: Context) -> list[dict]:
    """The central flow (Cohen et al.) against time-averaged GD, from initialisation (``gdflows central``)."""
    cfg = dataclasses.replace(ctx.plan.central, out=ctx.run.path / "central")
    cfg.run()
    m = read_csv(cfg.out / "central_metrics.csv")[0]
    judged = {r["claim"].split(":")[0]: r["verdict"] == "yes" for r in read_csv(cfg.out / "central_claims.csv")}
    windows = [w for w in read_csv(cfg.out / "central_windows.csv") if w["fraction"] not in ("", "nan")]
    judged["loss"] = bool(windows) and all(w["verdict"] == "yes" for w in windows)  # at every window shown
    shown = ", ".join(f"{float(w['fraction']):.1%} (window {w['window']})" for w in windows)
    second = m["second_at_edge"]
    ours = (
        f"averaged GD loss within 5% of the prediction on {shown} of steps after onset "
        f"(step {m['onset']}); |h lambda_0/2 - 1| <= {float(m['hold']):.1e} at EoS; distance to GD "
        f"{float(m['distance_ratio']):.3f}x gradient flow's; HVPs per step "
        f"{float(m['cost_hvps_one']):.1f} (one eigenvalue at 2/h), {float(m['cost_hvps_two']):.1f} (two, from step "
        f"{second if second not in ('', None) else 'never'})"
    )
    return [
        _claim(
            "The central flow tracks GD's time average at the edge of stability (Cohen et al.)",
            f"{cfg.net.activation} MLP, h = {cfg.lr}, {cfg.steps} GD steps from initialisation; the loss claim at "
            "every averaging window shown",
            f"gdflows central{_central_flags(cfg)}",
            ours,
            "loss within a few %, lambda_0 at 2/h, far closer than gradient flow",
            central_tracks(judged["loss"], judged["sharpness"], judged["trajectory"]),
            _central_numbers(m, cfg.window) | _window_numbers(windows),
        )
    ]


def _window_numbers(windows: list[dict]) -> dict[str, Measured]:
    """The loss fraction at each averaging window measured; n: the windows that fit in the steps it covers."""
    out = {}
    for w in windows:
        n = max(int(float(w["steps"])) // int(w["window"]), 1)
        rate = tolerances.binomial(float(w["fraction"]), n)
        out[f"loss fraction, window {w['window']}"] = Measured(rate.value, rate.tol, f"{rate.basis} windows")
    return out


def _dal_stats(row) -> str:
    st = seed_stats(row)
    loss = "" if st.diverged == st.seeds else f", loss {st.mean:.3f} +- {st.std:.3f}"
    return f"diverged {st.diverged}/{st.seeds}{loss}"


def _dal_numbers(p: str, st) -> dict[str, Measured]:
    out = {f"p={p} diverged": tolerances.exact(st.diverged)}
    n = st.seeds - st.diverged  # the seeds behind the mean and std
    if n >= 2:
        out[f"p={p} loss mean"] = tolerances.seeds(st.mean, st.std, n)
        out[f"p={p} loss std"] = tolerances.seeds_std(st.std)
    return out


CONV_COST_NETS = {"VGG": ("vgg", {"width": 4, "hidden": 32}), "ResNet": ("resnet", {"width": 4, "blocks": 1})}


def conv_cost_ratios(n: int = 256) -> dict[str, float]:
    """DAL-1 (hvp) / GD, FLOPs of one compiled full-batch step (XLA's cost analysis, nothing trained), on
    compare-optimizers' CPU conv nets (tanh, float32, MSE) over ``n`` images of the bundled MNIST subset."""
    data = downsample(load_dataset("mnist_subset", n_train=n, n_test=10, dtype="float32"), 2)
    out = {}
    for name, (model, kwargs) in CONV_COST_NETS.items():
        problem = network_problem(model, data, dtype="float32", activation="tanh", **kwargs)
        idx = np.zeros((1, 0), dtype=np.int32)
        flops = {}
        for m in (method("dal", "dal", p=1.0, max_lr=5.0, hg="hvp"), method("gd", lr=0.1)):
            opt = m.make()
            run = step_scan(opt, problem.batch_loss)
            flops[m.family] = step_flops(run, problem.theta0, opt.init(problem.theta0), *problem.train_xy, idx)
        out[name] = flops["dal"] / flops["gd"]
    return out


def dal_claims(ctx: Context) -> list[dict]:
    """The DAL claims; the wall-clock ratio goes to ``ctx.timings``."""
    cfg = CompareOptimizersConfig(
        out=ctx.run.path / "dal",
        models=("mlp",),
        regimes=("full",),
        methods=DAL_METHODS,
        scale=ctx.plan.dal_scale,
        seeds=ctx.plan.dal_seeds,
    )
    cfg.run()
    s = {r["method"]: r for r in read_csv(cfg.out / "summary.csv")}
    row = {p: s[f"dal_p{p}_hvp"] for p in ("0.5", "1", "2")}
    flops = {"MLP": float(s["dal_p1_hvp"]["flops_per_step"]) / float(s["gd_lr0.1"]["flops_per_step"])}
    flops |= conv_cost_ratios()
    ms = float(s["dal_p1_hvp"]["ms_per_step"]) / float(s["gd_lr0.1"]["ms_per_step"])
    ctx.timings["DAL-1 (hvp) / GD, wall time per step"] = f"{ms:.2f}x"
    cmd = (  # --scale always: a number keeps the MNIST-subset comparison (the default is the at-scale one)
        f"gdflows compare-optimizers --models mlp --regimes full --methods {' '.join(DAL_METHODS)} "
        f"--scale {ctx.plan.dal_scale:g} --seeds {ctx.plan.dal_seeds}"
    )
    return [
        _claim(
            "DAL trades stability for performance through p",
            f"MLP, full batch, {cfg.seeds} seeds, float32; loss: mean +- sample std of the seeds that did not diverge",
            cmd,
            "; ".join(f"p={p}: {_dal_stats(r)}" for p, r in row.items()),
            "larger p more stable, smaller p faster",
            stability_tradeoff({float(p): seed_stats(r) for p, r in row.items()}),
            {name: m for p, r in row.items() for name, m in _dal_numbers(p, seed_stats(r)).items()},
        ),
        _claim(
            "DAL's cost: about one extra gradient per step",
            "same run (MLP), and compare-optimizers' width-4 tanh conv nets on 256 images; FLOPs of one compiled "
            "full-batch step (XLA)",
            cmd,
            "DAL-1 (hvp) / GD FLOPs per step: " + ", ".join(f"{net} {r:.2f}x" for net, r in flops.items()),
            "one HVP per step",
            combine({net: cost_ratio(r) for net, r in flops.items()}),  # 2 = exactly one extra gradient
            {
                f"FLOPs ratio {net}": Measured(r, 1e-6 * r, "XLA's cost analysis of the same program")
                for net, r in flops.items()
            },
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
    run.write_table("numbers", [row for c in claims for row in tolerances.rows(c["claim"], c.pop(NUMBERS))])
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
    "What a rerun must reproduce: `gdflows reproduce --check` demands every verdict exactly and every number "
    "behind a claim within the tolerance declared with it in numbers.csv beside this report (with the basis of "
    "each: exact for counts, the solver's accuracy for the flows' distances, for rates over the steps of a "
    "chaotic run twice the standard deviation of the difference of two binomial rates, twice the seeds' spread "
    "for means over seeds). Bytes are not "
    "demanded: float rounding depends on the CPU (kernel blocking, FMA, summation order), and the chaotic runs "
    "amplify it (the DAL runs are float32, and their p = 2 runs turn a relative change of 1e-7 in the start into "
    "up to 0.07 in a seed's final loss; the edge-of-stability runs amplify float64 rounding the same way, more "
    "slowly). On one machine with one software stack the same command writes the same report, claim and number "
    "tables and figures byte for byte (some sub-run tables also hold wall-clock times). The tables behind "
    "every row are beside this report as CSV (per-step logs above 400 kB stay in the run folder)."
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


TIMINGS = "timings.csv"


def _figures(folder: Path) -> list[Path]:
    """Figures of the sub-runs, relative to the run folder."""
    return sorted(p.relative_to(folder) for p in folder.glob("*/figures/*.png"))


def _tables(folder: Path) -> list[Path]:
    """The tables behind the report, relative to the run folder: its own and the sub-runs' CSVs up to
    :data:`EXPORT_MAX_BYTES` (per-step logs above it stay in the run folder), but not a sub-run's
    ``timings.csv`` (this machine's clock, not a result another machine reproduces)."""
    found = [*folder.glob("*.csv"), *folder.glob("*/*.csv")]
    return sorted(p.relative_to(folder) for p in found if p.stat().st_size <= EXPORT_MAX_BYTES and p.name != TIMINGS)


def _exported(folder: Path, report: str) -> list[Path]:
    return [Path(report), *_tables(folder), *_figures(folder)]


def _stale(run_folder: Path, dest: Path, ours: list[Path]) -> list[Path]:
    """Figures and tables in ``dest`` under this run's sub-run folders that this run did not produce (those of
    another report in ``dest``, e.g. PAPER_SCALE.md's beside REPRODUCTION.md, are not this run's)."""
    subs = {p.name for p in run_folder.iterdir() if p.is_dir()}
    theirs = [*_figures(dest), *(rel for rel in _tables(dest) if len(rel.parts) > 1)]
    return [rel for rel in theirs if rel.parts[0] in subs and rel not in set(ours)]


def export(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> None:
    """Copy the report (REPRODUCTION.md, or PAPER_SCALE.md at the paper scale), its tables and the figures it
    embeds to ``dest`` (same relative paths); remove figures and tables ``dest`` holds that this run did not
    produce, so ``dest`` then passes :func:`check_copy`."""
    ours = _exported(run_folder, report)
    for rel in ours:
        atomic_write_bytes(dest / rel, (run_folder / rel).read_bytes())
    for rel in _stale(run_folder, dest, ours):
        (dest / rel).unlink()


def compare_claims(run_folder: Path, dest: Path) -> list[str]:
    """Where this run's claims differ from ``dest``'s: any verdict or text besides ``ours`` (exactly), and
    each number of numbers.csv beyond the tolerance ``dest`` declares for it."""
    mine, theirs = read_csv(run_folder / CLAIMS_CSV), read_csv(dest / CLAIMS_CSV)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "ours"} for r in rows]  # noqa: E731
    out = [] if strip(mine) == strip(theirs) else [f"{CLAIMS_CSV}: a claim or its verdict"]
    return out + tolerances.compare(read_csv(run_folder / NUMBERS_CSV), read_csv(dest / NUMBERS_CSV))


def compare_export(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> list[str]:
    """What differs between this run's export and ``dest``: files missing in ``dest``, figures and tables
    only ``dest`` has, then, for a report with declared numbers (numbers.csv), :func:`compare_claims`;
    a report without them (the paper scale's) is compared byte for byte."""
    ours = _exported(run_folder, report)
    missing = [f"{rel} (missing)" for rel in ours if not (dest / rel).is_file()]
    extra = [f"{rel} (not produced)" for rel in _stale(run_folder, dest, ours)]
    if missing or extra:
        return missing + extra
    if (run_folder / NUMBERS_CSV).is_file():
        return compare_claims(run_folder, dest)
    return [str(rel) for rel in ours if not filecmp.cmp(run_folder / rel, dest / rel, shallow=False)]


def check_copy(run_folder: Path, dest: Path, report: str = "REPRODUCTION.md") -> None:
    """Raise unless ``dest`` holds this run's report, tables and figures, with the same verdicts and every
    number within its declared tolerance."""
    differing = compare_export(run_folder, dest, report)
    if differing:
        raise GDFlowsError(
            f"this run differs from {dest}: {'; '.join(differing)}; "
            f"diff {run_folder} against it, or regenerate it with --docs {dest}"
        )
    print(f"{dest} matches this run (verdicts exactly, numbers within their declared tolerances)")
