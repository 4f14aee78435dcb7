import logging
import sys
from pathlib import Path

import pytest

# toy_training.py lives next to the tests and is imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def restore_usvid_logger():
    """DefaultTrainer / default_setup configure the "usvid" logger (handlers, no propagation);
    restore it so later tests in this worker still see log records (caplog)."""
    usvid_logger = logging.getLogger("usvid")
    saved = (list(usvid_logger.handlers), usvid_logger.propagate, usvid_logger.level)
    yield
    usvid_logger.handlers[:] = saved[0]
    usvid_logger.propagate, usvid_logger.level = saved[1], saved[2]
