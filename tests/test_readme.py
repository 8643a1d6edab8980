"""The README's code runs as written: the own-model example and the monitor examples (equinox, flax)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(after_heading: str) -> list[str]:
    """The python blocks of the README section under ``after_heading`` (to the next heading of its level)."""
    text = README.read_text()
    start = text.index(after_heading)
    level = after_heading.split(" ")[0]
    end = text.find(f"\n{level} ", start + len(after_heading))
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.S)


def test_use_it_on_your_own_model_runs(capsys):
    block = _python_blocks("## Use it on your own model")[0]
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "DAL's last rate" in out and "tr H = " in out


@pytest.mark.parametrize("which", ["equinox", "flax"])
def test_the_monitor_examples_write_a_report_with_figures(which, tmp_path, monkeypatch):
    equinox, flax = _python_blocks("### Monitor your own training loop")
    monkeypatch.chdir(tmp_path)
    exec(compile({"equinox": equinox, "flax": flax}[which], "README.md", "exec"), {})
    folder = tmp_path / "runs" / f"monitor_{which}"
    report = (folder / "REPORT.md").read_text()
    assert "Outcome: **monitored** through step 200" in report
    for figure in ("sharpness", "sc0", "c0", "loss"):
        assert f"figures/{figure}.png" in report and (folder / "figures" / f"{figure}.png").is_file()
    assert len((folder / "metrics.csv").read_text().splitlines()) == 1 + 11  # steps 0, 20, ..., 200
