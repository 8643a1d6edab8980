"""The README's code runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block(after_heading: str) -> str:
    text = README.read_text()
    section = text[text.index(after_heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_use_it_on_your_own_model_runs(capsys):
    exec(compile(_python_block("## Use it on your own model"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "DAL's last rate" in out and "tr H = " in out
