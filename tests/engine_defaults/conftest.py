import sys
from pathlib import Path

import pytest

# toy_training.py lives next to the tests and is imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy_training import preserved_usvid_logger  # noqa: E402


@pytest.fixture(autouse=True)
def restore_usvid_logger():
    with preserved_usvid_logger():
        yield
