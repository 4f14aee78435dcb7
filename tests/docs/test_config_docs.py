"""docs/{en,zh}/configs.md list every config key with its default, generated from get_cfg().

The table between the BEGIN/END markers is generated from the live default tree (engine defaults
plus ``add_ultrasound_config``) and the comment written above each key in the source, so the
docs cannot drift from the code: this test fails when a key is added, removed or its default
changes without regenerating. The en page shows those English comments; the zh page shows their
translations from docs/zh/config_comments.yaml, where each entry also keeps the English text it
translates, so that a comment edited in the code makes the test name the stale translation instead
of the zh page silently going out of date. Regenerate with

    .venv/bin/python tests/docs/test_config_docs.py --write
"""

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_SOURCES = [REPO / "usvid" / "config" / "defaults.py"] + sorted(
    (REPO / "usvid" / "config" / "ultrasound").glob("*.py")
)
EN_PAGE, ZH_PAGE = REPO / "docs" / "en" / "configs.md", REPO / "docs" / "zh" / "configs.md"
ZH_COMMENTS = REPO / "docs" / "zh" / "config_comments.yaml"
BEGIN, END = "<!-- BEGIN CONFIG TABLE (generated) -->", "<!-- END CONFIG TABLE -->"
_ASSIGNMENT = re.compile(r"^\s*(?:_C|cfg)\.([A-Z0-9_.]+)\s*=")


def default_config():
    sys.path.insert(0, str(REPO))
    from usvid.config import add_ultrasound_config, get_cfg

    return add_ultrasound_config(get_cfg())


def flatten(node, prefix=""):
    """(dotted key, value) for every leaf of a CfgNode, in sorted key order."""
    for key in sorted(node):
        value = node[key]
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def source_comments():
    """{dotted key: the comment block written directly above its assignment in the source}."""
    comments = {}
    for path in CONFIG_SOURCES:
        pending = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                pending.append(stripped.lstrip("#").strip())
                continue
            match = _ASSIGNMENT.match(line)
            if match and pending:
                comments.setdefault(match.group(1), " ".join(pending))
            pending = []
    return comments


def zh_entries():
    """{dotted key: {"en": source comment it translates, "zh": translation}} from ZH_COMMENTS."""
    return yaml.safe_load(ZH_COMMENTS.read_text(encoding="utf-8")) or {}


def page_meanings():
    """(page, {dotted key: meaning shown in its table}) for the en and zh pages."""
    zh = {key: entry.get("zh", "") for key, entry in zh_entries().items()}
    return [(EN_PAGE, source_comments()), (ZH_PAGE, zh)]


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def config_table(meanings):
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key, value in flatten(default_config()):
        rows.append(f"| `{key}` | `{_cell(repr(value))}` | {_cell(meanings.get(key, ''))} |")
    return "\n".join(rows)


def table_in(page_text, page):
    start, end = page_text.find(BEGIN), page_text.find(END)
    assert 0 <= start < end, f"{page} lacks the {BEGIN} ... {END} markers"
    return page_text[start + len(BEGIN) : end].strip()


def write_tables():
    for page, meanings in page_meanings():
        text = page.read_text(encoding="utf-8")
        table_in(text, page)  # checks the markers
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        page.write_text(f"{head}{BEGIN}\n{config_table(meanings)}\n{END}{tail}", encoding="utf-8")


def test_every_key_is_documented_with_its_default():
    for page, meanings in page_meanings():
        documented = table_in(page.read_text(encoding="utf-8"), page)
        assert documented == config_table(meanings), (
            f"{page.relative_to(REPO)} is out of date with get_cfg(); regenerate with "
            "`.venv/bin/python tests/docs/test_config_docs.py --write`"
        )


def test_every_commented_key_has_a_chinese_meaning():
    entries = zh_entries()
    for key in source_comments():
        assert str(entries.get(key, {}).get("zh") or "").strip(), (
            f"{ZH_COMMENTS.relative_to(REPO)} lacks a non-empty `zh` translation for {key}"
        )


def test_no_translation_for_a_key_without_a_source_comment():
    comments = source_comments()
    for key in zh_entries():
        assert key in comments, (
            f"{ZH_COMMENTS.relative_to(REPO)} has an entry for {key}, which no longer exists "
            "or has no comment in the source; delete the entry"
        )


def test_translations_match_the_current_source_comments():
    comments = source_comments()
    for key, entry in zh_entries().items():
        assert key not in comments or entry.get("en") == comments[key], (
            f"the source comment of {key} changed, so its translation in "
            f"{ZH_COMMENTS.relative_to(REPO)} is stale: set `en` to {comments[key]!r} and update `zh`"
        )


def test_comment_extraction_reads_the_block_above_the_key():
    comments = source_comments()
    assert comments["DATALOADER.REFRESH_PERIOD"].startswith("Hard-negative mining: every")
    assert "REFRESH_PERIOD" not in comments.get("DATASETS.SAMPLE_FP_BY_VIDEO", "")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_tables()
    else:
        print(config_table(source_comments()))
