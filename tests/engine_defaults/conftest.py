import sys
from pathlib import Path

import pytest
import torch
import torch.utils.deterministic

# toy_training.py lives next to the tests and is imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy_scripts import restore_usvid_logger  # noqa: E402,F401


@pytest.fixture(autouse=True)
def restore_deterministic_algorithms():
    """default_setup turns on deterministic kernels for the whole process (the default on the
    CPU): turn them off again so that later tests in the same worker run as they would alone."""
    yield
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    torch.utils.deterministic.fill_uninitialized_memory = True  # torch's default
