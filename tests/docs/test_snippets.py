"""Every ```python block of README.md and docs/**/*.md runs as written.

The blocks of one page run in order in one namespace (a page is a tutorial: later snippets may
use names defined earlier), in a fresh Python process (as a reader would run them: no state left
by other pages, e.g. registered dataset names) inside an empty temporary working directory, with
the repository (usvid) importable. Snippets run as an imported module would
(``__name__`` is not "__main__"), so a script's ``if __name__ == "__main__":`` part is not run.
A snippet that fails names its page and line.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Fences may be indented (a snippet inside a list item); the code is dedented.
_PYTHON_BLOCK = re.compile(r"^[ \t]*```python[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)


def _documents():
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("**/*.md"))


def python_snippets(markdown_path):
    """The ```python blocks of a markdown file as (first line number, code) pairs."""
    text = markdown_path.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start(1)) + 1, textwrap.dedent(match.group(1)))
        for match in _PYTHON_BLOCK.finditer(text)
    ]


def test_snippet_extraction_finds_every_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\na = 1\n```\n\ntext\n\n```bash\nls\n```\n```python\nb = a\n```\n"
        "1. step\n\n   ```python\n   c = b\n   ```\n"
    )
    assert python_snippets(page) == [(4, "a = 1\n"), (13, "b = a\n"), (18, "c = b\n")]


@pytest.mark.parametrize(
    "markdown_path",
    [p for p in _documents() if p.exists() and python_snippets(p)],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_snippets_run(markdown_path, tmp_path):
    page = str(markdown_path.relative_to(REPO))
    snippets = [(f"{page}:{line}", code) for line, code in python_snippets(markdown_path)]
    (tmp_path / "snippets.json").write_text(json.dumps(snippets))
    runner = (
        "import json\n"
        "namespace = {'__name__': '__snippet__'}\n"
        "for where, code in json.load(open('snippets.json')):\n"
        "    exec(compile(code, where, 'exec'), namespace)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-c", runner], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"a snippet of {page} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def test_readme_and_docs_have_snippets():
    """Guards against the extraction silently matching nothing (e.g. a changed fence style)."""
    assert python_snippets(REPO / "README.md"), "README.md has no ```python block"
    assert os.path.isdir(REPO / "docs" / "en")
