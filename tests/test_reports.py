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


def test_a_progress_bar_over_a_generator_stands_at_the_step_reached_out_of_the_total(capsys, monkeypatch):
    from gdflows.experiments.report.progress import track_stages

    monkeypatch.delenv("GDFLOWS_QUIET", raising=False)
    schedule = (step for step in (0, 5, 12))  # a run's logged steps: no length, ended before its budget of 20
    assert [step for step, _ in track_stages(schedule, "train", total=20, position=lambda step: step)] == [0, 5, 12]
    assert "12/20" in capsys.readouterr().out
    assert [item for item, _ in track_stages(["a", "b"], "items")] == ["a", "b"]
    assert "2/2" in capsys.readouterr().out  # without position: items counted out of the length
