"""`make demo` tells whether it reproduced the numbers README.md quotes (usvid.app.quoted_results),
and every doc that quotes the demo's numbers quotes the same ones."""

from pathlib import Path

import pytest

from usvid.app.quoted_results import MARKER, README, compare_with_readme, differences, read_quoted_metrics

REPO = Path(__file__).resolve().parents[2]
QUOTING_DOCS = ("docs/en/getting_started.md", "docs/zh/getting_started.md")


def _readme(tmp_path, block):
    path = tmp_path / "README.md"
    path.write_text(
        f"# usvid\n\n{MARKER}\n```\nusvid demo finished in 6.0 min. Results on phantom_test:\n"
        f"{block}\n```\nmore text 0.1\n",
        encoding="utf-8",
    )
    return str(path)


def test_the_readme_quotes_the_demo_and_the_docs_quote_the_same_numbers():
    quoted = read_quoted_metrics(README)
    assert quoted is not None and set(quoted) == {"AP50", "Pr80", "FP80", "R@16"}
    for doc in QUOTING_DOCS:
        assert read_quoted_metrics(str(REPO / doc)) == quoted, doc


def test_a_run_that_reproduces_the_quote_says_so(tmp_path):
    path = _readme(tmp_path, "  AP50 0.912  Pr80 0.950  FP80 6.000  R@16 0.961  FPS 40.123")
    assert read_quoted_metrics(path) == {"AP50": 0.912, "Pr80": 0.95, "FP80": 6.0, "R@16": 0.961}
    same = {"AP50": 0.9121, "Pr80": 0.95, "FP80": 6.0, "R@16": 0.961, "FPS": 12.0}
    assert differences(same, read_quoted_metrics(path)) == []
    assert "are the numbers README.md quotes" in compare_with_readme(same, path)


def test_a_run_that_differs_names_each_metric(tmp_path):
    path = _readme(tmp_path, "  AP50 0.912  Pr80 n/a (recall 0.8 never reached)  FP80 6 /min  R@16 0.961")
    run = {"AP50": 0.870, "Pr80": 0.5, "FP80": 9.0, "R@16": 0.961}
    lines = differences(run, read_quoted_metrics(path))
    assert lines == ["AP50 0.870 here, 0.912 quoted", "Pr80 0.500 here, nan quoted", "FP80 9.000 here, 6 quoted"]
    assert compare_with_readme(run, path).startswith("Not the numbers README.md quotes")


@pytest.mark.parametrize("text", ["# no marker\n", f"{MARKER}\nno block\n"])
def test_no_quote_means_no_verdict(tmp_path, text):
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    assert compare_with_readme({"AP50": 0.9}, str(path)) is None
    assert compare_with_readme({"AP50": 0.9}, str(tmp_path / "missing.md")) is None
