"""The README's library example runs as written and prints what it says it prints."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_library_example_runs_and_its_energy_error_is_bounded():
    text = README.read_text(encoding="utf-8")
    section = text.split("## A few lines of library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 - our own README
    assert out.getvalue().strip() == "bounded"
