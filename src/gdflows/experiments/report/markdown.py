"""Markdown tables for run reports."""

from collections.abc import Callable


def markdown_table(rows, columns, fmt=None, default: Callable = "{}".format) -> str:
    """A Markdown table of ``rows`` (dicts) over ``columns``.

    ``fmt`` maps a column to a format string; other cells go through ``default``; a cell a row lacks (or
    holds as "") is empty. A ``|`` inside a cell is escaped so the table keeps its columns.
    """
    fmt = fmt or {}

    def cell(row, col):
        if row.get(col, "") == "":
            return ""
        text = fmt[col].format(row[col]) if col in fmt else default(row[col])
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
