"""``setup``: from parsed command-line arguments to the frozen config of a run, with logging,
the output folder (named after the config with AUTO_DIR), the registered datasets and a backup
of the code that produced the run."""

import os
import shutil
import time

from usvid.config import CfgNode, load_ultrasound_config
from usvid.data import check_dataset_names, register_builtin_datasets
from usvid.engine import default_setup
from usvid.utils import comm

# The checkout holding usvid/ and tools/ (the folders backup_code copies).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def auto_output_dir(output_root, config_file):
    """OUTPUT_DIR for AUTO_DIR: ``output_root/<config path below configs/, without .yaml>``,
    e.g. configs/phantom/ultradet.yaml -> output/phantom/ultradet, so runs of different configs
    never overwrite each other."""
    parts = os.path.splitext(os.path.abspath(config_file))[0].split(os.sep)
    if "configs" in parts:
        last_configs = len(parts) - 1 - parts[::-1].index("configs")
        return os.path.join(output_root, *parts[last_configs + 1 :])
    return os.path.join(output_root, parts[-1])


def backup_code(output_dir, config_file):
    """Copy the .py files of usvid/ and tools/ plus the config file and every ``_BASE_`` file it
    inherits from into ``output_dir/code_<UTC timestamp>`` (a record of exactly what produced the
    results). The config files keep their layout relative to one another (their common folder
    becomes the backup's root), so the copied ``_BASE_`` paths still resolve."""
    backup_dir = os.path.join(output_dir, "code_" + time.strftime("%Y%m%d_%H%M%S", time.gmtime()))
    for package in ("usvid", "tools"):
        source_root = os.path.join(REPO_ROOT, package)
        for folder, _, files in os.walk(source_root):
            for file_name in files:
                if file_name.endswith(".py"):
                    relative = os.path.relpath(os.path.join(folder, file_name), REPO_ROOT)
                    os.makedirs(os.path.join(backup_dir, os.path.dirname(relative)), exist_ok=True)
                    shutil.copy2(os.path.join(REPO_ROOT, relative), os.path.join(backup_dir, relative))
    if config_file:
        chain = [os.path.abspath(path) for path, _ in CfgNode.load_yaml_chain(config_file)]
        common = os.path.commonpath([os.path.dirname(path) for path in chain])
        for path in chain:
            target = os.path.join(backup_dir, os.path.relpath(path, common))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(path, target)
    return backup_dir


def setup(args):
    """The frozen config for ``args``; sets up logging and output, registers the datasets."""
    cfg = load_ultrasound_config(args.config_file, args.opts)
    if cfg.AUTO_DIR:
        if not args.config_file:
            raise ValueError("AUTO_DIR True names OUTPUT_DIR after --config-file, but none was given")
        cfg.OUTPUT_DIR = auto_output_dir(cfg.OUTPUT_DIR, args.config_file)
    cfg.freeze()
    default_setup(cfg, args)
    # The main process generates the phantom on first use; the others wait, then register it.
    if comm.is_main_process():
        register_builtin_datasets(cfg)
        backup_code(cfg.OUTPUT_DIR, args.config_file)
    comm.synchronize()
    if not comm.is_main_process():
        register_builtin_datasets(cfg)
    check_dataset_names(cfg)
    return cfg
