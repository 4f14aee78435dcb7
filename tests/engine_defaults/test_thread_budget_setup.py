"""default_setup applies the thread budget (usvid.utils.cpu_budget) before anything is built:
CPU_THREADS, the automatic split and the reason in the run's log."""

import argparse

import pytest
import torch

from usvid.config import ConfigError, get_cfg
from usvid.engine import default_setup
from usvid.utils.cpu_budget import current_thread_budget, plan_thread_budget
from usvid.utils.cpu_limits import available_cores

pytestmark = pytest.mark.usefixtures("thread_budget_sandbox")

ARGS = argparse.Namespace(config_file="", eval_only=False)


def config(tmp_path, cpu_threads, workers):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.CPU_THREADS = cpu_threads
    cfg.DATALOADER.NUM_WORKERS = workers
    return cfg


def test_cpu_threads_is_applied_and_logged_with_its_reason(tmp_path):
    default_setup(config(tmp_path, 2, 0), ARGS)
    assert torch.get_num_threads() == 2
    assert current_thread_budget().streaming == 2
    log = (tmp_path / "log.txt").read_text()
    assert "CPU threads: 2 for training, 2 for streaming inference (CPU_THREADS 2 in the config" in log
    assert "usable core(s) (affinity mask" in log


def test_automatic_budget_follows_this_machines_cores_and_the_loader_workers(tmp_path):
    default_setup(config(tmp_path, 0, 2), ARGS)
    expected = plan_thread_budget(available_cores(), local_processes=1, loader_workers=2)
    assert torch.get_num_threads() == expected.training
    assert current_thread_budget() == expected
    assert expected.describe() in (tmp_path / "log.txt").read_text()


def test_a_negative_cpu_threads_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="CPU_THREADS is -2"):
        default_setup(config(tmp_path, -2, 0), ARGS)
