"""gdflows reproduce: the whole pipeline at the smoke scale, its determinism, --check, the paper plan."""

import contextlib
import json
import re

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


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Two independent smoke reproductions; the first exported to docs/. The second reruns every
    experiment and rewrites every file; only XLA's compilation of the same programs comes from the cache."""
    root = tmp_path_factory.mktemp("reproduce")
    with persistent_compilation_cache(root / "xla"):
        ReproduceConfig(out=root / "first", scale="smoke", docs=root / "docs").run()
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
        "no: edge no, sign no",
    ),
    ("|Hg| tracks the per-iteration drift", r"Pearson r \(logs\) = 0\.99\d\d over 40 pairs; .*", "yes"),
    (
        "DAL trades stability for performance through p",
        r"p=0\.5: diverged 3/3; p=1: diverged 0/3, loss .*; p=2: diverged 0/3, loss .*",
        "partly: stability partly, speed partly",
    ),
    ("DAL's cost: about one extra gradient per step", r"DAL-1 \(hvp\) / GD = 2\.\d\dx FLOPs per step", "yes"),
    (
        "The central flow tracks GD's time average at the edge of stability (Cohen et al.)",
        r"averaged GD loss within 5% of the prediction on 100\.0% of steps after onset \(step 90\); .*",
        "yes",
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


def test_a_fresh_run_reproduces_the_exported_report_byte_for_byte(smoke):
    assert compare_export(smoke / "second", smoke / "docs") == []


def test_check_names_the_file_that_differs(smoke, tmp_path):
    docs = tmp_path / "docs"
    export(smoke / "first", docs)
    check_copy(smoke / "second", docs)
    report = docs / "REPRODUCTION.md"
    report.write_text(report.read_text().replace("| yes |", "| no |", 1))
    figure = sorted(docs.glob("*/figures/*.png"))[0]
    (figure.parent / "stray.png").write_bytes(figure.read_bytes())
    with pytest.raises(GDFlowsError, match=r"REPRODUCTION.md, .*stray.png \(not produced\)"):
        check_copy(smoke / "second", docs)
    export(smoke / "second", docs)  # regenerating removes the stray figure
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
        "PAPER_SCALE.md",
        "eos_conv/figures/sharpness.png",
        "eos_conv/figures/old.png (not produced)",
    ]
    export(run, docs, "PAPER_SCALE.md")
    check_copy(run, docs, "PAPER_SCALE.md")
    assert (docs / "train_lr0.12/figures/sharpness.png").read_text() == "committed"  # the reproduction's own
    assert not (docs / "eos_conv/figures/old.png").exists()
