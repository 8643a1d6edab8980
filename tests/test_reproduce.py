"""gdflows reproduce: the whole pipeline at the smoke scale, its determinism, --check, the paper plan."""

import contextlib
import json
import re
import shutil
from pathlib import Path

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from gdflows.errors import GDFlowsError
from gdflows.experiments.report.runs import read_csv
from gdflows.experiments.reproduce import ReproduceConfig, check_copy, compare_export, export


@contextlib.contextmanager
def persistent_compilation_cache(folder):
    """XLA's compiled programs cached in ``folder`` (as JAX_COMPILATION_CACHE_DIR would), then the settings restored."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = {name: getattr(jax.config, name) for name in names}
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    compilation_cache.reset_cache()  # JAX decides once per process whether to use the cache
    try:
        yield
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


# Sub-runs the second reproduction takes over finished from the first (their own tests rerun and resume them):
# it recomputes the others and every claim, and rewrites every file.
REUSED = ("dal", "central")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Two smoke reproductions; the first exported to docs/. The second starts from the first's finished
    sub-runs in REUSED, reruns every other experiment and claim and rewrites every file; only XLA's
    compilation of the same programs comes from the cache."""
    root = tmp_path_factory.mktemp("reproduce")
    with persistent_compilation_cache(root / "xla"):
        ReproduceConfig(out=root / "first", scale="smoke", docs=root / "docs").run()
        for name in REUSED:
            shutil.copytree(root / "first" / name, root / "second" / name)
        ReproduceConfig(out=root / "second", scale="smoke").run()
    return root


# What the smoke scale measures and concludes, claim by claim: (claim, "ours" as a pattern, the verdict). The first
# six run the same computations as docs/reproduction/REPRODUCTION.md (--scale cpu) and give its numbers and verdicts;
# solver errors (the PF's distance to GD on the quadratic) are checked by size. The others run smaller here.
SMOKE_CLAIMS = [
    ("PF follows GD exactly on quadratics, for every h", r"max \|PF - GD\| = (?P<err>\S+)", "yes"),
    ("Only the PF captures divergence (h lambda > 2)", r"PF (?P<err>\S+), NGF 0\.564, IGR 0\.564", "yes"),
    ("Only the PF captures oscillation (1 < h lambda < 2)", r"PF (?P<err>\S+), NGF 0\.338 \(max over n\)", "yes"),
    (
        "The PF captures escape from a sharp minimum",
        r"GD leaves the dip at step 5 and ends at x = 0\.028 \(sharp min 1\.752\); PF within 0\.01 of GD up to step 2, "
        r"solve max_steps; NGF and IGR stay in the sharp minimum, 1\.72 and 1\.72 from GD at the end",
        "no: follows GD to step 2, GD escapes at step 5",
    ),
    (
        "The PF captures escape from saddles (slower than NGF)",
        r"escape time GD 7\.074, PF 7\.073, NGF 6\.358, IGR 7\.200",
        "yes",
    ),
    (
        "Error orders: NGF 2, IGR 3, third-order 4, PF 3, PF+NP 4",
        r"NGF 1\.97, IGR 2\.96, third-order 3\.95, PF 3\.03, PF\+NP 3\.98",
        "yes",
    ),
    # 40 steps on 64 images do not reach the edge of stability
    (
        "Edge of stability explained by lambda_0 vs 2/h and Re(sc_0) (h = 0.12)",
        r"lambda_0 rose and hovers: False; .*",
        "no: edge no, sign inconclusive",  # the loss falls at all 41 steps: nothing can beat "always down"
    ),
    (
        "|Hg| tracks the per-iteration drift",
        r"Pearson r \(logs\) = 0\.99\d\d over 40 pairs \(per rate: h = 0\.03: [01]\.\d{4}, h = 0\.1: [01]\.\d{4}\); .*",
        "yes",
    ),
    (
        "DAL trades stability for performance through p",
        r"p=0\.5: diverged 3/3; p=1: diverged 0/3, loss .*; p=2: diverged 0/3, loss .*",
        "partly: stability partly, speed partly",
    ),
    (
        "DAL's cost: about one extra gradient per step",
        r"DAL-1 \(hvp\) / GD FLOPs per step: MLP 2\.\d\dx, VGG [23]\.\d\dx, ResNet [23]\.\d\dx",
        "partly: MLP yes, VGG partly, ResNet partly",
    ),
    (
        "The central flow tracks GD's time average at the edge of stability (Cohen et al.)",
        # the loss claim at every window shown: 21 steps are too few to average GD's oscillation out
        r"averaged GD loss within 5% of the prediction on \d+\.\d% \(window 21\), 100\.0% \(window 101\), "
        r"100\.0% \(window 41\) of steps after onset \(step 90\); .*",
        "partly: not loss",
    ),
]


def test_every_claim_has_its_measured_number_and_verdict(smoke):
    claims = read_csv(smoke / "first" / "claims.csv")
    text = (smoke / "docs" / "REPRODUCTION.md").read_text()
    assert [c["claim"] for c in claims] == [claim for claim, _, _ in SMOKE_CLAIMS]
    assert claims[-1]["command"].startswith("gdflows central --lr 0.38 --steps 160")
    for c, (claim, ours, agrees) in zip(claims, SMOKE_CLAIMS):
        assert c["agrees"] == agrees, claim
        match = re.fullmatch(ours, c["ours"])
        assert match, (claim, c["ours"])
        if "err" in match.groupdict():
            assert float(match["err"]) < 1e-11, claim  # exact up to the solver (rtol 1e-12)
        assert c["ours"].replace("|", "\\|") in text
    assert (smoke / "first" / "TIMINGS.md").is_file()
    assert "min" not in text.splitlines()[2]  # no wall-clock time in the report itself
    assert "## Where the PF follows GD" in text and "pf_validity/figures/pf_validity.png" in text


def test_a_folder_computed_by_other_software_is_refused_not_resumed(smoke, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    config = json.loads((smoke / "second" / "config.json").read_text())
    config["software"]["gdflows_source_sha256"] = "0" * 64  # as if written by another version of gdflows
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(GDFlowsError, match=r"holds another run \(software.gdflows_source_sha256: '0000"):
        ReproduceConfig(out=out, scale="smoke").run()


def test_a_rerun_reproduces_the_exported_report_byte_for_byte(smoke):
    assert compare_export(smoke / "second", smoke / "docs") == []
    for rel in ("REPRODUCTION.md", "claims.csv", "numbers.csv", "drift/drift.csv", "drift/figures/drift.png"):
        assert (smoke / "second" / rel).read_bytes() == (smoke / "docs" / rel).read_bytes(), rel  # one machine


def test_every_number_behind_a_claim_is_declared_with_its_tolerance(smoke):
    numbers = read_csv(smoke / "docs" / "numbers.csv")
    claims = {c["claim"] for c in read_csv(smoke / "docs" / "claims.csv")}
    assert {r["claim"] for r in numbers} == claims
    by = {(r["claim"], r["number"]): r for r in numbers}
    pf = by[("PF follows GD exactly on quadratics, for every h", "max |PF - GD|")]
    assert float(pf["value"]) < 1e-11 and float(pf["tolerance"]) == 1e-10 and pf["basis"] == "solver accuracy"
    eos = by[("Edge of stability explained by lambda_0 vs 2/h and Re(sc_0) (h = 0.12)", "sign agreement")]
    rate, n = float(eos["value"]), int(float(by[(eos["claim"], "steps above noise")]["value"]))
    assert float(eos["tolerance"]) == pytest.approx(max(2 * (rate * (1 - rate) / n) ** 0.5, 1 / n))
    central = by[(SMOKE_CLAIMS[-1][0], "loss fraction")]
    metrics = read_csv(smoke / "docs" / "central" / "central_metrics.csv")[0]
    windows, rate = max(int(metrics["steps_at_eos"]) // 41, 1), float(central["value"])  # --window 41
    assert float(central["tolerance"]) == pytest.approx(max(2 * (rate * (1 - rate) / windows) ** 0.5, 1 / windows))
    assert central["basis"].endswith("windows of 41 steps")
    for net, high in (("MLP", 3), ("VGG", 3.5), ("ResNet", 3.5)):  # one HVP: two to three gradients' FLOPs
        cost = by[("DAL's cost: about one extra gradient per step", f"FLOPs ratio {net}")]
        assert 2 <= float(cost["value"]) < high and float(cost["tolerance"]) == pytest.approx(
            1e-6 * float(cost["value"])
        )
    run_tables = {p.relative_to(smoke / "first") for p in (smoke / "first").rglob("*.csv")}
    small = {rel for rel in run_tables if (smoke / "first" / rel).stat().st_size <= 100_000}
    small = {rel for rel in small if rel.name != "timings.csv"}  # this machine's clock: not exported
    assert {p.relative_to(smoke / "docs") for p in (smoke / "docs").rglob("*.csv")} == small
    assert Path("central/central_metrics.csv") in small and Path("dal/summary.csv") in small


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_check_holds_verdicts_exactly_and_numbers_within_their_tolerances(smoke, tmp_path):
    docs = tmp_path / "docs"
    export(smoke / "first", docs)
    check_copy(smoke / "second", docs)
    numbers = docs / "numbers.csv"
    committed = numbers.read_text()
    row = next(r for r in read_csv(numbers) if r["number"] == "p=1 loss mean")
    value, tol = float(row["value"]), float(row["tolerance"])
    _edit(numbers, row["value"], repr(value + 0.9 * tol))  # within the seeds' spread: passes
    check_copy(smoke / "second", docs)
    numbers.write_text(committed)
    _edit(numbers, row["value"], repr(value + 1.1 * tol))
    with pytest.raises(GDFlowsError, match=r"DAL trades stability for performance through p / p=1 loss mean: "):
        check_copy(smoke / "second", docs)
    numbers.write_text(committed)
    _edit(docs / "claims.csv", ",yes\n", ",no\n")  # a verdict
    figure = sorted(docs.glob("*/figures/*.png"))[0]
    (figure.parent / "stray.png").write_bytes(figure.read_bytes())
    with pytest.raises(GDFlowsError, match=r"stray.png \(not produced\)"):
        check_copy(smoke / "second", docs)
    export(smoke / "second", docs)  # regenerating removes the stray figure and restores the verdict
    check_copy(smoke / "second", docs)
    _edit(docs / "claims.csv", ",yes\n", ",no\n")
    with pytest.raises(GDFlowsError, match=r"claims.csv: a claim or its verdict"):
        check_copy(smoke / "second", docs)
    (docs / "drift" / "drift.csv").unlink()
    with pytest.raises(GDFlowsError, match=r"drift/drift.csv \(missing\)"):
        check_copy(smoke / "second", docs)


def test_unknown_scale_and_paper_without_its_data_are_refused(tmp_path):
    with pytest.raises(GDFlowsError, match="--scale .huge. is not one of: cpu, paper, smoke"):
        ReproduceConfig(out=tmp_path / "r", scale="huge").run()
    with pytest.raises(GDFlowsError, match="--data-dir"):  # no Fashion-MNIST files in this folder
        ReproduceConfig(out=tmp_path / "r", scale="paper", data_dir=tmp_path).run()
    assert not (tmp_path / "r" / "eos_conv").exists()


def test_paper_scale_exports_beside_the_reproduction_without_touching_its_figures(tmp_path):
    run, docs = tmp_path / "paper", tmp_path / "docs"
    for rel, text in {"PAPER_SCALE.md": "# paper", "eos_conv/figures/sharpness.png": "new"}.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    for rel in ("REPRODUCTION.md", "train_lr0.12/figures/sharpness.png", "eos_conv/figures/old.png"):
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text("committed")
    assert compare_export(run, docs, "PAPER_SCALE.md") == [
        "PAPER_SCALE.md (missing)",
        "eos_conv/figures/sharpness.png (missing)",
        "eos_conv/figures/old.png (not produced)",
    ]
    export(run, docs, "PAPER_SCALE.md")
    check_copy(run, docs, "PAPER_SCALE.md")
    (docs / "PAPER_SCALE.md").write_text("# edited")
    assert compare_export(run, docs, "PAPER_SCALE.md") == ["PAPER_SCALE.md"]  # no declared numbers: bytes
    assert (docs / "train_lr0.12/figures/sharpness.png").read_text() == "committed"  # the reproduction's own
    assert not (docs / "eos_conv/figures/old.png").exists()


def test_a_sub_runs_timings_are_not_a_table_to_reproduce(tmp_path):
    from gdflows.experiments.reproduce import _tables

    (tmp_path / "dal").mkdir()
    for rel in ("claims.csv", "dal/results.csv", "dal/timings.csv"):
        (tmp_path / rel).write_text("a\n1\n")
    assert [str(p) for p in _tables(tmp_path)] == ["claims.csv", "dal/results.csv"]
