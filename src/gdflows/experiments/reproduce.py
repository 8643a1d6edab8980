"""`gdflows reproduce`: each claim of the paper beside our own measured number.

Every number in REPRODUCTION.md is computed by the run that writes it, and
the report holds no wall-clock times (those go to TIMINGS.md beside it), so
the same command on the same software writes the same report: ``--check
docs/reproduction`` reruns it and fails on any difference from the
committed copy. The sub-experiments run into sub-folders of the run folder
(so an interrupted reproduction resumes the resumable parts), and a claim
table is assembled from their tables.

Scales (:data:`SCALES`, a :class:`Scale` each):

* ``cpu`` (default): a tanh MLP on 1,000 bundled MNIST images; about 4
  minutes on 2 cores.
* ``paper``: the paper-sized networks on 5,000 CIFAR-10 images from
  ``--data-dir`` (VGG- and ResNet-style nets and a wide MLP, 10,000 GD
  steps each) and 4x larger DAL runs, for a machine with an accelerator.
  ``benchmarks/reproduce_paper_cost.py`` measures its cost per gradient and
  HVP and extrapolates the run time (about 17 days on 2 CPU cores for one
  VGG run alone: one gradient 74 s, one HVP 131 s, 53 HVPs per diagnosis).
* ``smoke``: the same pipeline on tiny runs in about a minute, for tests;
  its verdicts mean nothing.
"""

from __future__ import annotations

import dataclasses
import filecmp
import time
from pathlib import Path

from gdflows.errors import GDFlowsError
from gdflows.experiments.commands import ReproduceConfig
from gdflows.experiments.drift import DriftConfig, correlations
from gdflows.experiments.eos import eos_verdicts
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.optimizers.compare import CompareOptimizersConfig
from gdflows.experiments.quadratic import quadratic_tables, summary_rows
from gdflows.experiments.report.markdown import markdown_table
from gdflows.experiments.report.runs import Run, atomic_write_bytes, read_csv
from gdflows.experiments.toys import fitted_slopes, one_step_errors, saddle_tables, sharp_dip_tables, tracked_steps
from gdflows.experiments.train import TrainConfig

__all__ = ["ReproduceConfig", "run", "reproduce", "scale_plan", "check_copy", "compare_export", "export"]

DAL_METHODS = ("dal_p0.5_hvp", "dal_p1_hvp", "dal_p2_hvp", "gd_lr0.1")


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
    needs_data_dir: bool = False

    @property
    def drift_every(self) -> int:
        """Measure the drift about 20 times per rate."""
        return max(1, self.drift_steps // 20)

    def nets(self) -> list[NetworkSetup]:
        return [e.net for e in self.eos] + [self.drift_net]


def _cifar(model: str, **kwargs) -> NetworkSetup:
    return NetworkSetup(dataset="cifar10", n_train=5000, downsample=1, model=model, **kwargs)


SCALES = {
    "cpu": Scale(
        eos=(EosRun(NetworkSetup(), (0.12, 0.15), 2000),),
        drift_net=NetworkSetup(),
        drift_lrs=(0.01, 0.03, 0.1, 0.15),
        drift_steps=600,
        dal_scale=1.0,
    ),
    "paper": Scale(
        eos=(
            EosRun(_cifar("vgg", width=16), (0.02, 0.04), 10000),
            EosRun(_cifar("resnet", width=16), (0.02,), 10000),
            EosRun(_cifar("mlp", depth=2, width=512), (0.02,), 10000),
        ),
        drift_net=_cifar("vgg", width=16),
        drift_lrs=(0.005, 0.01, 0.02, 0.04),
        drift_steps=2000,
        dal_scale=4.0,
        needs_data_dir=True,
    ),
    "smoke": Scale(
        eos=(EosRun(NetworkSetup(n_train=64, downsample=4, width=8), (0.12,), 40),),
        drift_net=NetworkSetup(n_train=64, downsample=4, width=8),
        drift_lrs=(0.03, 0.1),
        drift_steps=20,
        dal_scale=0.1,
    ),
}


def scale_plan(scale: str, data_dir: Path | None = None) -> Scale:
    """The :class:`Scale` named ``scale``, with ``data_dir`` set on its CIFAR-10 nets."""
    if scale not in SCALES:
        raise GDFlowsError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    plan = SCALES[scale]
    if not plan.needs_data_dir:
        return plan
    if data_dir is None:
        raise GDFlowsError(
            f"--scale {scale} trains on CIFAR-10: pass --data-dir, the folder holding "
            "cifar-10-batches-py (the python version from https://www.cs.toronto.edu/~kriz/cifar.html)"
        )
    at = lambda net: dataclasses.replace(net, data_dir=Path(data_dir))  # noqa: E731
    return dataclasses.replace(
        plan, eos=tuple(dataclasses.replace(e, net=at(e.net)) for e in plan.eos), drift_net=at(plan.drift_net)
    )


def net_flags(net: NetworkSetup) -> str:
    """The command-line flags that set ``net`` (those differing from the default NetworkSetup)."""
    default = NetworkSetup()
    flags = ""
    for f in dataclasses.fields(net):
        value = getattr(net, f.name)
        if value != getattr(default, f.name):
            flags += f" --net.{f.name.replace('_', '-')} {'DIR' if f.name == 'data_dir' else value}"
    return flags


def _claim(claim, experiment, command, ours, paper, agrees) -> dict:
    return {
        "claim": claim,
        "experiment": experiment,
        "command": command,
        "ours": ours,
        "paper": paper,
        "agrees": agrees,
    }


def quadratic_claims() -> list[dict]:
    dist, _ = quadratic_tables(substeps=1)
    s = {(r["lr"], r["flow"]): r for r in summary_rows(dist)}
    pf = max(r["max_distance"] for k, r in s.items() if k[1] == "PF")
    cmd = "gdflows quadratic"
    return [
        _claim(
            "PF follows GD exactly on quadratics, for every h",
            "reference quadratic, h = 0.5, 0.9, 1.0, 1.05",
            cmd,
            f"max |PF - GD| = {pf:.1e}",
            "~1e-13 (exact up to the solver)",
            "yes" if pf <= 1e-9 else "no",
        ),
        _claim(
            "Only the PF captures divergence (h lambda > 2)",
            "h = 1.05, 5 steps",
            cmd,
            f"PF {s[(1.05, 'PF')]['final_distance']:.1e}, NGF {s[(1.05, 'NGF')]['final_distance']:.3f}, "
            f"IGR {s[(1.05, 'IGR')]['final_distance']:.3f}",
            "NGF/IGR 0.564, PF ~0",
            "yes" if s[(1.05, "PF")]["final_distance"] < 1e-9 < s[(1.05, "NGF")]["final_distance"] else "no",
        ),
        _claim(
            "Only the PF captures oscillation (1 < h lambda < 2)",
            "h = 0.9, 20 steps",
            cmd,
            f"PF {s[(0.9, 'PF')]['max_distance']:.1e}, NGF {s[(0.9, 'NGF')]['max_distance']:.3f} (max over n)",
            "NGF/IGR slide to the minimum",
            "yes" if s[(0.9, "PF")]["max_distance"] < 1e-9 else "no",
        ),
    ]


def toy_claims() -> list[dict]:
    dip, _, facts = sharp_dip_tables(steps=12, substeps=1)
    pf_tracked = tracked_steps(dip, 0.01)["PF"]
    pf_status = next(r["status"] for r in dip if r["flow"] == "PF")
    stay = {f: next(r["distance"] for r in dip if r["flow"] == f and r["n"] == 12) for f in ("NGF", "IGR")}
    _, _, times = saddle_tables(steps=40, substeps=4)
    t = {r["flow"]: r["escape_time"] for r in times}
    slopes = fitted_slopes(one_step_errors())
    return [
        _claim(
            "The PF captures escape from a sharp minimum",
            "sharp Gaussian dip, h lambda = 3.5, 12 steps",
            "gdflows toys",
            f"GD ends at x = {facts['gd_final']:.3f} (sharp min {facts['x_sharp']:.3f}); PF within "
            f"0.01 of GD for {pf_tracked} steps, then solve {pf_status}; NGF and IGR stay in the sharp minimum, "
            f"{stay['NGF']:.2f} and {stay['IGR']:.2f} from GD at the end",
            "PF follows GD out of the sharp minimum",
            "yes" if pf_tracked >= 12 else f"partly: PF follows the first {pf_tracked} steps" if pf_tracked else "no",
        ),
        _claim(
            "The PF captures escape from saddles (slower than NGF)",
            "E = x^2/2 - y^2/2 + y^4/4",
            "gdflows toys",
            f"escape time GD {t['GD']:.3f}, PF {t['PF']:.3f}, NGF {t['NGF']:.3f}, IGR {t['IGR']:.3f}",
            "PF follows GD",
            "yes" if abs(t["PF"] - t["GD"]) < 0.01 * t["GD"] and t["PF"] > t["NGF"] else "no",
        ),
        _claim(
            "Error orders: NGF 2, IGR 3, third-order 4, PF 3, PF+NP 4",
            "one-step error vs h, smooth cubic",
            "gdflows toys",
            ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()),
            "2, 3, 4, 3, 4",
            "yes"
            if all(
                abs(slopes[k] - e) <= 0.15
                for k, e in {"NGF": 2, "IGR": 3, "third-order": 4, "PF": 3, "PF+NP": 4}.items()
            )
            else "no",
        ),
    ]


def eos_claims(run: Run, eos: EosRun) -> list[dict]:
    out = []
    net = eos.net
    for lr in eos.lrs:
        folder = f"train_lr{lr}" if net == NetworkSetup() else f"train_{net.model}_lr{lr}"
        cfg = TrainConfig(out=run.path / folder, net=net, lr=lr, steps=eos.steps, log_every=eos.log_every)
        cfg.run()
        v = eos_verdicts(read_csv(cfg.out / "metrics.csv"))
        out.append(
            _claim(
                f"Edge of stability explained by lambda_0 vs 2/h and Re(sc_0) (h = {lr})",
                f"full-batch GD, {net.activation} {net.model} on {net.dataset}, {eos.steps} steps",
                f"gdflows train --lr {lr} --steps {eos.steps} --log-every {eos.log_every}{net_flags(net)}",
                f"lambda_0 rose and hovers: {v['edge_of_stability']}; PF dE/dt sign agrees on "
                f"{100 * v['sign_agreement']:.1f}% of {v['steps_above_noise']} steps",
                "lambda_0 -> 2/h; loss rises when Re(sc_0) > 0",
                "yes" if v["edge_of_stability"] and v["sign_agreement"] >= 0.9 else "no",
            )
        )
    return out


def drift_claim(run: Run, plan: Scale) -> dict:
    cfg = DriftConfig(
        out=run.path / "drift", net=plan.drift_net, lrs=plan.drift_lrs, steps=plan.drift_steps, every=plan.drift_every
    )
    cfg.run()
    c = correlations(read_csv(cfg.out / "drift.csv"))
    return _claim(
        "|Hg| tracks the per-iteration drift",
        f"drift vs (h^2/2)|Hg| over {len(plan.drift_lrs)} rates and training time",
        f"gdflows drift --lrs {' '.join(map(str, plan.drift_lrs))} --steps {plan.drift_steps} "
        f"--every {plan.drift_every}"
        f"{net_flags(plan.drift_net)}",
        f"Pearson r (logs) = {c['pearson_log']:.4f} over {c['pairs']} pairs",
        "strong correlation",
        "yes" if c["pearson_log"] > 0.9 else "no",
    )


def dal_claims(run: Run, plan: Scale) -> tuple[list[dict], dict]:
    """The DAL claims, and the wall-clock facts that stay out of the report."""
    cfg = CompareOptimizersConfig(
        out=run.path / "dal", models=("mlp",), regimes=("full",), methods=DAL_METHODS, scale=plan.dal_scale
    )
    cfg.run()
    s = {r["method"]: r for r in read_csv(cfg.out / "summary.csv")}
    row = {p: s[f"dal_p{p}_hvp"] for p in ("0.5", "1", "2")}
    flops = float(s["dal_p1_hvp"]["flops_per_step"]) / float(s["gd_lr0.1"]["flops_per_step"])
    ms = float(s["dal_p1_hvp"]["ms_per_step"]) / float(s["gd_lr0.1"]["ms_per_step"])
    trade = ", ".join(
        f"p={p}: diverged {r['diverged']}/{r['seeds']}, loss {float(r['final_loss_mean']):.3f}" for p, r in row.items()
    )
    stable = int(row["2"]["diverged"]) <= int(row["1"]["diverged"]) <= int(row["0.5"]["diverged"])
    faster = float(row["1"]["final_loss_mean"]) <= float(row["2"]["final_loss_mean"])
    cmd = f"gdflows compare-optimizers --models mlp --regimes full --methods {' '.join(DAL_METHODS)}" + (
        f" --scale {plan.dal_scale:g}" if plan.dal_scale != 1 else ""
    )
    claims = [
        _claim(
            "DAL trades stability for performance through p",
            f"MLP, full batch, {cfg.seeds} seeds",
            cmd,
            trade,
            "larger p more stable, smaller p faster",
            {(True, True): "yes", (True, False): "partly: stability yes, speed no"}.get((stable, faster), "no"),
        ),
        _claim(
            "DAL's cost: about one extra gradient per step",
            "same run, FLOPs of one compiled step (XLA)",
            cmd,
            f"DAL-1 (hvp) / GD = {flops:.2f}x FLOPs per step",
            "one HVP per step",
            "yes" if flops <= 2.5 else "no",
        ),  # 2 = exactly one extra gradient
    ]
    return claims, {"DAL-1 (hvp) / GD, wall time per step": f"{ms:.2f}x"}


def run(cfg: ReproduceConfig) -> Path:
    """``gdflows reproduce``: every claim into ``cfg.out`` (unless already there), then ``--docs`` / ``--check``."""
    plan = scale_plan(cfg.scale, cfg.data_dir)
    folder = Run.pending(cfg)  # the folder holds cfg.identity(): where to copy to is not part of the run
    if folder is not None:
        reproduce(folder.create(), cfg.scale, plan)
        folder.finish("REPRODUCTION.md")
    if cfg.docs is not None:
        export(Path(cfg.out), Path(cfg.docs))
    if cfg.check is not None:
        check_copy(Path(cfg.out), Path(cfg.check))
    return Path(cfg.out)


def reproduce(run: Run, scale: str, plan: Scale) -> None:
    """Every claim of ``plan`` into ``run``: claims.csv, REPRODUCTION.md, TIMINGS.md."""
    start = time.perf_counter()
    claims = quadratic_claims() + toy_claims()
    for eos in plan.eos:
        claims += eos_claims(run, eos)
    claims.append(drift_claim(run, plan))
    dal, timings = dal_claims(run, plan)
    claims += dal
    run.write_table("claims", claims)
    run.write_text("REPRODUCTION.md", report(claims, scale, _figures(run.path)))
    timings["whole reproduction, minutes"] = f"{(time.perf_counter() - start) / 60:.1f}"
    run.write_text(
        "TIMINGS.md",
        "# Wall-clock times of this run (not part of the report)\n\n"
        + markdown_table([{"what": k, "value": v} for k, v in timings.items()], ["what", "value"])
        + "\n",
    )
    print(f"wrote {run.path / 'REPRODUCTION.md'} ({timings['whole reproduction, minutes']} min)")


def report(claims: list[dict], scale: str, figures: list[Path]) -> str:
    return (
        "# Reproduction of Rosca, Wu, Qin & Dherin (TMLR 2023)\n\n"
        f"Written by `gdflows reproduce --scale {scale}`; every number below is computed by that run "
        "(sub-runs and their figures are in the run folder's sub-folders, wall-clock times in its "
        "TIMINGS.md).\n\n"
        + markdown_table(claims, ["claim", "experiment", "command", "ours", "paper", "agrees"])
        + "\n\n"
        + "## Figures\n\n"
        + "\n".join(f"![{f.stem}]({f})" for f in figures)
        + "\n"
    )


def _figures(folder: Path) -> list[Path]:
    """Figures of the sub-runs, relative to the run folder."""
    return sorted(p.relative_to(folder) for p in folder.glob("*/figures/*.png"))


def _exported(folder: Path) -> list[Path]:
    return [Path("REPRODUCTION.md"), *_figures(folder)]


def export(run_folder: Path, dest: Path) -> None:
    """Copy REPRODUCTION.md and the figures it embeds to ``dest`` (same relative paths)."""
    for rel in _exported(run_folder):
        atomic_write_bytes(dest / rel, (run_folder / rel).read_bytes())


def compare_export(run_folder: Path, dest: Path) -> list[str]:
    """The exported files that differ from (or are missing in) ``dest``, and figures only ``dest`` has."""
    ours = _exported(run_folder)
    differ = [
        str(rel)
        for rel in ours
        if not (dest / rel).is_file() or not filecmp.cmp(run_folder / rel, dest / rel, shallow=False)
    ]
    extra = [f"{rel} (not produced)" for rel in _figures(dest) if rel not in set(ours)]
    return differ + extra


def check_copy(run_folder: Path, dest: Path) -> None:
    """Raise unless ``dest`` holds exactly the report and figures of ``run_folder``."""
    differing = compare_export(run_folder, dest)
    if differing:
        raise GDFlowsError(
            f"the report differs from {dest} in: {', '.join(differing)}; "
            f"diff {run_folder} against it, or regenerate it with --docs {dest}"
        )
    print(f"{dest} matches this run")
