import pytest
import torch

from usvid.config import (
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigKeyError,
    ConfigTypeError,
    get_cfg,
    resolve_device,
)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_chain_with_relative_paths_later_files_win(tmp_path):
    _write(tmp_path / "base" / "root.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\nOUTPUT_DIR: root\n")
    _write(tmp_path / "base" / "mid.yaml", "_BASE_: root.yaml\nSOLVER:\n  MAX_ITER: 20\n  STEPS: [5, 8]\n")
    top = _write(tmp_path / "exp" / "top.yaml", "_BASE_: ../base/mid.yaml\nSOLVER:\n  BASE_LR: 1\n")
    cfg = get_cfg()
    cfg.merge_from_file(str(top))
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.MAX_ITER == 20
    assert cfg.SOLVER.STEPS == (5, 8)  # list from YAML coerced to the default's tuple
    assert cfg.OUTPUT_DIR == "root"
    assert cfg.SOLVER.MOMENTUM == 0.9  # untouched defaults survive


def test_merge_from_list_parses_literals_and_keeps_strings(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "0.01", "SOLVER.LR_MULTIPLIERS", "[('backbone', 0.1)]", "OUTPUT_DIR", "123"])
    assert cfg.SOLVER.BASE_LR == 0.01
    assert cfg.SOLVER.LR_MULTIPLIERS == [("backbone", 0.1)]
    assert cfg.OUTPUT_DIR == "123"


def test_freeze_dump_round_trip(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.STEPS", "(3, 4)", "SOLVER.ADAM_BETA", "(0.8, 0.9)"])
    cfg.freeze()
    with pytest.raises(ConfigError, match="frozen"):
        cfg.merge_from_list(["SEED", "1"])
    path = _write(tmp_path / "dumped.yaml", cfg.dump())
    again = get_cfg()
    again.merge_from_file(str(path))
    assert again == cfg
    assert get_cfg().SOLVER.STEPS == (30000,)  # get_cfg returns an independent copy


def test_unknown_key_names_key_file_and_closest_keys(tmp_path):
    path = _write(tmp_path / "typo.yaml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigKeyError) as info:
        get_cfg().merge_from_file(str(path))
    message = str(info.value)
    assert "SOLVER.BASE_LRR" in message and str(path) in message and "SOLVER.BASE_LR" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_unknown_key_in_base_names_the_base_file(tmp_path):
    _write(tmp_path / "base.yaml", "MODEL:\n  BASE_LR: 0.1\n")
    top = _write(tmp_path / "top.yaml", "_BASE_: base.yaml\nSEED: 3\n")
    with pytest.raises(ConfigKeyError, match=r"MODEL\.BASE_LR in .*base\.yaml.*SOLVER\.BASE_LR"):
        get_cfg().merge_from_file(str(top))


def test_unknown_key_and_wrong_type_from_list():
    with pytest.raises(ConfigKeyError, match="SOLVER.MAX_ITERS in the command-line overrides.*SOLVER.MAX_ITER"):
        get_cfg().merge_from_list(["SOLVER.MAX_ITERS", "5"])
    with pytest.raises(ConfigTypeError, match="SOLVER.MAX_ITER .*expects type int.*got float 0.5"):
        get_cfg().merge_from_list(["SOLVER.MAX_ITER", "0.5"])
    with pytest.raises(ConfigKeyError, match="Unknown config key SOLVR in .*Did you mean: SOLVER"):
        get_cfg().merge_from_list(["SOLVR.BASE_LR", "0.1"])
    with pytest.raises(ConfigError, match="odd number of items: 'SOLVER.MAX_ITER' has no value"):
        get_cfg().merge_from_list(["SOLVER.MAX_ITER"])
    with pytest.raises(ConfigError, match="'SOLVER.MAX_ITER' has no value"):  # the next item is a key
        get_cfg().merge_from_list(["SOLVER.MAX_ITER", "OUTPUT_DIR", "out"])
    with pytest.raises(ConfigError, match="'--resume' is a command-line option .* before the KEY VALUE pairs"):
        get_cfg().merge_from_list(["OUTPUT_DIR", "out", "--resume"])


def test_wrong_type_in_file_names_key_type_value_and_file(tmp_path):
    path = _write(tmp_path / "bad.yaml", "SOLVER:\n  NESTEROV: [1, 2]\n")
    with pytest.raises(ConfigTypeError) as info:
        get_cfg().merge_from_file(str(path))
    message = str(info.value)
    assert "SOLVER.NESTEROV" in message and "bool" in message and "[1, 2]" in message and str(path) in message
    section = _write(tmp_path / "section.yaml", "SOLVER: 3\n")
    with pytest.raises(ConfigTypeError, match="SOLVER .*section"):
        get_cfg().merge_from_file(str(section))


def test_missing_base_names_path_and_referencing_file(tmp_path):
    top = _write(tmp_path / "top.yaml", "_BASE_: ../missing/base.yaml\n")
    with pytest.raises(ConfigFileNotFoundError) as info:
        get_cfg().merge_from_file(str(top))
    assert str((tmp_path / ".." / "missing" / "base.yaml").resolve()) in str(info.value)
    assert str(top) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_base_cycle_is_reported(tmp_path):
    _write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(ConfigFileError, match="cycle"):
        get_cfg().merge_from_file(str(tmp_path / "a.yaml"))


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path / "broken.yaml", "SOLVER:\n  BASE_LR: 0.1\n  STEPS: [1, 2\nSEED: 1\n")
    with pytest.raises(ConfigFileError, match=r"broken\.yaml, line 4"):
        get_cfg().merge_from_file(str(path))
    not_mapping = _write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigFileError, match="list.yaml must hold a mapping"):
        get_cfg().merge_from_file(str(not_mapping))


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="MODEL.DEVICE is 'gpu', not a device; use 'auto', 'cpu', 'cuda'"):
        resolve_device("gpu")


def test_load_ultrasound_config_merges_defaults_then_file_then_overrides(tmp_path):
    from usvid.config import load_ultrasound_config

    path = _write(tmp_path / "run.yaml", "SOLVER:\n  MAX_ITER: 10\n  BASE_LR: 0.5\n")
    cfg = load_ultrasound_config(str(path), ["SOLVER.BASE_LR", "0.1"])
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.BASE_LR) == (10, 0.1)
    assert "SEGS_PER_BATCH" in cfg.SOLVER and "PHANTOM" in cfg.DATASETS  # the application keys are there
