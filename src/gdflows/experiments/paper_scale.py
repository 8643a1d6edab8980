"""The paper's scale on an accelerator: conv nets at the edge of stability and DAL against the field, in PAPER_SCALE.md.

Two sub-runs in one folder:

* ``eos_conv/``: ``gdflows eos-conv --size accelerator`` (VGG- and
  ResNet-style nets, 5,000 full-size Fashion-MNIST images, two rates each;
  :mod:`gdflows.experiments.eos_conv`);
* ``compare_full/``: ``gdflows compare-optimizers --scale full`` (DAL against
  the field on full Fashion-MNIST). Where this version of gdflows has no
  ``--scale full`` the section says so instead.

``gdflows reproduce --scale paper`` runs both and writes ``PAPER_SCALE.md``
(:func:`reproduce`); ``benchmarks/paper_scale_device.sh`` runs the same two
commands, each under a time limit, then writes the same file from what they
left with ``python -m gdflows.experiments.paper_scale FOLDER``
(:func:`write`). A sub-run stopped by its time limit is reported from the
steps it reached, and the report says so. The file holds no wall-clock time;
it names the device the runs computed on.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import jax

from gdflows.errors import GDFlowsError
from gdflows.experiments import eos_conv
from gdflows.experiments.configs import EosConvConfig, config_from_dict, load
from gdflows.experiments.report.runs import Run, has_finish_marker, read_json

REPORT = "PAPER_SCALE.md"
EOS_FOLDER = "eos_conv"
COMPARE_FOLDER = "compare_full"
COMPARE_ARGS = ("compare-optimizers", "--scale", "full")


@dataclasses.dataclass(frozen=True)
class PaperScale:
    """The plan of ``--scale paper``: the eos-conv config (its ``out`` set per run folder) and the
    compare-optimizers command line."""

    eos: EosConvConfig = dataclasses.field(default_factory=lambda: EosConvConfig(size="accelerator"))
    compare_args: tuple[str, ...] = COMPARE_ARGS

    def eos_config(self, folder: Path) -> EosConvConfig:
        return dataclasses.replace(self.eos, out=Path(folder) / EOS_FOLDER)

    def sizes(self) -> dict:
        """What the plan runs, in numbers (for the report and the tests)."""
        cfg = self.eos.resolved()
        return {
            "eos_models": cfg.models,
            "eos_runs": len(eos_conv.train_configs(cfg)),
            "eos_n_train": cfg.net.n_train,
            "eos_image_side": 28 // cfg.net.downsample,
            "eos_steps": cfg.steps,
            "eos_log_every": cfg.log_every,
            "eos_width": cfg.net.width,
            "compare": " ".join(self.compare_args),
        }


def compare_config(args: tuple[str, ...], folder: Path):
    """The compare-optimizers config of ``args`` into ``folder/compare_full``, parsed as the command line
    parses it; (None, why) when this version of gdflows does not accept them."""
    argv = [*args, "--out", str(Path(folder) / COMPARE_FOLDER)]
    try:
        cfg = load("gdflows.experiments.cli:parse")(argv)
        cfg.validate()
    except SystemExit:  # the parser refused the flags (and printed why)
        return None, f"this version of gdflows does not accept `gdflows {' '.join(args)}`"
    except GDFlowsError as err:
        return None, f"this version of gdflows refuses `gdflows {' '.join(args)}`: {err}"
    return cfg, ""


def reproduce(run: Run, plan: PaperScale) -> Path:
    """Both sub-runs of ``plan`` into ``run`` (each resumable), then PAPER_SCALE.md."""
    plan.eos_config(run.path).run()
    compare, why = compare_config(plan.compare_args, run.path)
    if compare is None:
        print(why, file=sys.stderr)
    else:
        compare.run()
    return write(run.path, plan.compare_args)


def device_name() -> str:
    """The device JAX computes on: its kind, how many, the platform and JAX's version."""
    devices = jax.devices()
    return f"{devices[0].device_kind} x {len(devices)} ({devices[0].platform}, JAX {jax.__version__})"


def _stored_eos_config(folder: Path) -> EosConvConfig:
    """The eos-conv config a folder holds (its config.json), with ``out`` set to the folder."""
    return dataclasses.replace(config_from_dict(EosConvConfig, read_json(folder / "config.json")), out=folder)


def eos_section(folder: Path) -> str:
    """The eos-conv sub-run as Markdown: its summary (rewritten from the runs it reached if it did not finish)."""
    sub = folder / EOS_FOLDER
    head = "## The edge of stability on conv nets\n\n"
    if not (sub / "config.json").is_file():
        return head + "Not run.\n"
    cfg = _stored_eos_config(sub)
    command = f"`gdflows eos-conv{eos_conv.flags(cfg)}`"
    if has_finish_marker(sub):
        note, found = "", eos_conv.tables(sub, cfg)
    else:  # its report is rewritten from the steps reached
        note = (
            "**Incomplete**: the command stopped (its time limit) before every run finished; each row covers "
            "the steps its run reached (outcome `interrupted`).\n\n"
        )
        found = eos_conv.write_report(Run(sub, {}), cfg)
    if found is None:
        return head + f"Command: {command}.\n\n" + note + "No run logged a step.\n"
    md = eos_conv.markdown(cfg, found.rows, found.pooled, f"{EOS_FOLDER}/", events=found.events, errors=found.errors)
    return head + f"Command: {command}.\n\n" + note + md


def _demoted(report: str, prefix: str) -> str:
    """A sub-run's REPORT.md inside this one: headings two levels down (under this report's sections),
    image links under ``prefix``."""
    report = re.sub(r"^(#+) ", r"##\1 ", report, flags=re.M)
    return re.sub(r"\]\((?!https?:)([^)]+)\)", rf"]({prefix}\1)", report)


def compare_section(folder: Path, args: tuple[str, ...]) -> str:
    """The compare-optimizers sub-run as Markdown: its report, or why there is none."""
    sub = folder / COMPARE_FOLDER
    head = f"## DAL against the field at full size\n\nCommand: `gdflows {' '.join(args)}`.\n\n"
    if (sub / "REPORT.md").is_file() and has_finish_marker(sub):
        return head + _demoted((sub / "REPORT.md").read_text(), f"{COMPARE_FOLDER}/")
    if sub.is_dir():
        return head + (
            "**Incomplete**: the command stopped (its time limit) before it finished; "
            f"`{COMPARE_FOLDER}/results.csv` holds the runs it completed.\n"
        )
    _, why = compare_config(args, folder)
    return head + (f"Not run: {why}.\n" if why else "Not run.\n")


def markdown(folder: Path, args: tuple[str, ...] = COMPARE_ARGS, device: str | None = None) -> str:
    device = device_name() if device is None else device
    return (
        "# The paper's scale on an accelerator\n\n"
        f"Computed on **{device}** by `gdflows reproduce --scale paper` (or `benchmarks/paper_scale_device.sh`, "
        "which runs the same commands, each under a time limit, and writes this file the same way). Every "
        "number is computed by those runs; verdicts come from `gdflows.experiments.verdicts`.\n\n"
        + eos_section(folder)
        + "\n"
        + compare_section(folder, args)
    )


def write(folder: Path, args: tuple[str, ...] = COMPARE_ARGS) -> Path:
    """PAPER_SCALE.md in ``folder`` from its sub-runs."""
    path = Path(folder) / REPORT
    path.write_text(markdown(Path(folder), args))
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m gdflows.experiments.paper_scale FOLDER [compare-optimizers args]``: FOLDER/PAPER_SCALE.md."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m gdflows.experiments.paper_scale FOLDER [compare-optimizers args...]")
    write(Path(argv[0]), tuple(argv[1:]) or COMPARE_ARGS)


if __name__ == "__main__":
    main()
