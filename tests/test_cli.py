"""The CLI runs an experiment end to end into a run folder."""

from gdflows.experiments.cli import main
from gdflows.experiments.report.runs import read_csv


def test_quadratic_command_writes_report_and_figures(tmp_path):
    out = tmp_path / "q"
    main(["quadratic", "--out", str(out), "--substeps", "1"])
    rows = read_csv(out / "quadratic_summary.csv")
    pf = [r for r in rows if r["flow"] == "PF"]
    assert len(pf) == 4 and all(float(r["max_distance"]) < 1e-9 for r in pf)
    assert (out / "REPORT.md").read_text().count("![") == 4
    assert len(list((out / "figures").glob("*.png"))) == 4
