"""Fuzzing the YAML config loader: whatever a config file holds, loading it either works or
raises one ConfigError that names the file -- never a bare traceback from inside yacs/yaml."""

import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usvid.config import add_ultrasound_config, get_cfg
from usvid.config.config import ConfigError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Real keys, near misses and junk, so the fuzzer reaches deep into the tree as well as off it.
KEY_NAMES = st.sampled_from(
    [
        "MODEL",
        "SOLVER",
        "INPUT",
        "BASE_LR",
        "MAX_ITER",
        "STEPS",
        "DEVICE",
        "WEIGHTS",
        "PIXEL_MEAN",
        "TRAIN",
        "TEST",
        "DATASETS",
        "FIXED_AREA_TRAIN",
        "BASE_LRR",
        "solver",
        "",
        "_BASE_",
        "0",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEY_NAMES, children, max_size=4)),
    max_leaves=12,
)


def _fresh_cfg():
    return add_ultrasound_config(get_cfg())


def _load_or_explain(path):
    """Load ``path``; on failure the error must be a ConfigError naming the file."""
    cfg = _fresh_cfg()
    try:
        cfg.merge_from_file(str(path))
    except ConfigError as err:
        assert os.path.basename(str(path)) in str(err), f"error does not name the file: {err}"
        return None
    return cfg


@FUZZ
@given(content=st.binary(max_size=200))
def test_binary_garbage_is_a_config_error_naming_the_file(tmp_path, content):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(content)
    _load_or_explain(path)


@FUZZ
@given(tree=st.dictionaries(KEY_NAMES, TREES, max_size=5))
def test_random_yaml_trees_load_or_raise_a_config_error(tmp_path, tree):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree))
    _load_or_explain(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SOLVER:\n  BASE_LR: [1, 2\n", "line"),  # invalid YAML: the line is named
        ("- 1\n- 2\n", "mapping"),  # a list at top level
        ("SOLVER: 3\n", "section"),  # a section replaced by a value
        ("SOLVER:\n  BASE_LRR: 0.1\n", "BASE_LR"),  # unknown key: the closest valid key suggested
        ("SOLVER:\n  MAX_ITER: fast\n", "MAX_ITER"),  # wrong type names the key
        ("_BASE_: does_not_exist.yaml\n", "does_not_exist.yaml"),  # missing base: the path looked at
        ("_BASE_:\n  MODEL: 1\n", "_BASE_"),  # a base that is not a path (hypothesis found it)
        ("_BASE_: " + "x" * 300 + ".yaml\n", "File name too long"),  # unreadable base: both files named
    ],
)
def test_hand_written_bad_configs_name_file_and_problem(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        _fresh_cfg().merge_from_file(str(path))
    message = str(err.value)
    assert "bad.yaml" in message and expected.lower() in message.lower(), message


def test_empty_file_changes_nothing(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    cfg = _fresh_cfg()
    cfg.merge_from_file(str(path))
    assert cfg == _fresh_cfg()


def test_base_cycle_is_reported_not_recursed_forever(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        _fresh_cfg().merge_from_file(str(tmp_path / "a.yaml"))


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError) as err:
        _fresh_cfg().merge_from_file(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in str(err.value)


def test_latin1_file_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("SOLVER:\n  BASE_LR: 0.1  # r\xe9glage\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml is not UTF-8 text \(byte 0xe9"):
        _fresh_cfg().merge_from_file(str(path))


def test_a_folder_given_as_config_is_a_config_error(tmp_path):
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="configs.yaml"):
        _fresh_cfg().merge_from_file(str(folder))
