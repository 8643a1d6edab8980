"""Report helpers: Markdown tables stay tables; reproduce refuses unknown scales."""

import pytest

from gdflows.markdown import markdown_table
from gdflows.experiments.reproduce import ReproduceConfig


def test_markdown_table_escapes_pipes_inside_cells():
    text = markdown_table([{"a": "|Hg| = 2", "b": 0.5}], ["a", "b"], {"b": "{:.2f}"})
    row = text.splitlines()[2]
    assert row == "| \\|Hg\\| = 2 | 0.50 |"
    assert row.replace("\\|", "").count("|") == 3


def test_reproduce_rejects_an_unknown_scale(tmp_path):
    with pytest.raises(ValueError, match="scale must be one of"):
        ReproduceConfig(out=tmp_path / "r", scale="huge").run()
