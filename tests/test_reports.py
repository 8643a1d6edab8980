"""Report helpers: Markdown tables stay tables."""

from gdflows.experiments.report.markdown import markdown_table


def test_markdown_table_escapes_pipes_inside_cells():
    text = markdown_table([{"a": "|Hg| = 2", "b": 0.5}], ["a", "b"], {"b": "{:.2f}"})
    row = text.splitlines()[2]
    assert row == "| \\|Hg\\| = 2 | 0.50 |"
    assert row.replace("\\|", "").count("|") == 3


def test_markdown_table_leaves_a_missing_or_empty_cell_empty_instead_of_formatting_it():
    text = markdown_table([{"a": 1.0, "b": ""}, {"a": 2.0}], ["a", "b"], {"a": "{:.1f}", "b": "{:.2f}"})
    assert text.splitlines()[2:] == ["| 1.0 |  |", "| 2.0 |  |"]
