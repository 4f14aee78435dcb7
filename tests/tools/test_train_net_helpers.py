"""The small pieces of usvid.app (the application behind tools/train_net.py) that the end-to-end
runs do not reach: the AUTO_DIR folder name, the summary over several test sets, the code
backup."""

import math
import os

import pytest

from usvid import app


@pytest.mark.parametrize(
    "config_file, expected",
    [
        ("configs/phantom/ultradet.yaml", "output/phantom/ultradet"),
        ("/abs/configs/cva_bus/ultradet_r34.yaml", "output/cva_bus/ultradet_r34"),
        ("/data/configs/x/configs/mine/a.yaml", "output/mine/a"),  # the innermost configs/
        ("my_experiment.yaml", "output/my_experiment"),  # outside configs/: the file name
    ],
)
def test_auto_output_dir_is_named_after_the_config(config_file, expected):
    assert app.auto_output_dir("output", config_file) == expected


def test_summary_table_has_one_row_per_test_set():
    results = {
        "breast_test": {"lesion_detection": {"AP50": 0.9, "Pr80": 0.8, "FP80": 1.5, "R@16": 0.97, "FPS": 31.0}},
        "thyroid_test": {"lesion_detection": {"AP50": 0.7, "Pr80": math.nan, "FP80": math.nan, "R@16": 0.9}},
    }
    header, _, breast, thyroid = app.summary_table(results).splitlines()
    cells = lambda line: [c.strip() for c in line.split("|")[1:-1]]  # noqa: E731
    assert cells(header) == ["dataset", "AP50", "Pr80", "FP80", "R@16", "FPS"]
    assert cells(breast) == ["breast_test", "0.9000", "0.8000", "1.5000", "0.9700", "31.0000"]
    assert cells(thyroid) == ["thyroid_test", "0.7000", "nan", "nan", "0.9000", "nan"]  # no FPS: nan


def test_evaluators_must_match_the_test_sets():
    from usvid.config import add_ultrasound_config, get_cfg

    cfg = add_ultrasound_config(get_cfg())
    cfg.DATASETS.TEST = ("a", "b")
    with pytest.raises(ValueError, match="1 evaluators given for 2 datasets"):
        app.Trainer.test(cfg, model=None, evaluators=[object()])


def test_trainer_test_uses_the_evaluator_a_subclass_builds(tiny_opts, tmp_path, frame_counter):
    from usvid.config import add_ultrasound_config, get_cfg
    from usvid.data import register_builtin_datasets

    class MyTrainer(app.Trainer):  # as docs/en/training.md tells users to customise
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            return frame_counter()

    cfg = add_ultrasound_config(get_cfg())
    cfg.merge_from_file(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "phantom", "tiny.yaml"))
    cfg.merge_from_list(tiny_opts + ["OUTPUT_DIR", str(tmp_path)])
    register_builtin_datasets(cfg)
    results = MyTrainer.test(cfg, MyTrainer.build_model(cfg))
    assert set(results) == {"frame_count"}
    assert results["frame_count"]["frames"] == 32  # the tiny phantom's 2 test videos of 16 frames


def test_code_backup_holds_the_sources_and_the_config(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text("SEED: 3\n")
    backup = app.backup_code(str(tmp_path / "out"), str(config))
    assert os.path.basename(backup).startswith("code_")
    assert os.path.isfile(os.path.join(backup, "usvid", "engine", "defaults.py"))
    assert os.path.isfile(os.path.join(backup, "tools", "train_net.py"))
    assert open(os.path.join(backup, "exp.yaml")).read() == "SEED: 3\n"


def test_the_application_trainer_scales_its_clip_batch_with_the_world_size():
    from usvid.config import add_ultrasound_config, get_cfg

    cfg = add_ultrasound_config(get_cfg())
    cfg.merge_from_list(["SOLVER.REFERENCE_WORLD_SIZE", "1", "SOLVER.SEGS_PER_BATCH", "2"])
    assert app.Trainer.auto_scale_workers(cfg, 2).SOLVER.SEGS_PER_BATCH == 4


def test_code_backup_keeps_the_base_chain_of_the_config(tmp_path):
    (tmp_path / "configs" / "phantom").mkdir(parents=True)
    (tmp_path / "configs" / "Base.yaml").write_text("SEED: 1\n")
    config = tmp_path / "configs" / "phantom" / "exp.yaml"
    config.write_text('_BASE_: "../Base.yaml"\nSOLVER:\n  MAX_ITER: 7\n')
    backup = app.backup_code(str(tmp_path / "out"), str(config))
    assert open(os.path.join(backup, "Base.yaml")).read() == "SEED: 1\n"
    copied = os.path.join(backup, "phantom", "exp.yaml")
    assert open(copied).read() == config.read_text()
    # The copy loads on its own: its _BASE_ resolves inside the backup.
    from usvid.config import CfgNode

    assert [os.path.basename(path) for path, _ in CfgNode.load_yaml_chain(copied)] == ["Base.yaml", "exp.yaml"]
