"""Reproducibility helpers: seeding every RNG and describing the software environment."""

import importlib.metadata
import logging
import os
import platform
import random
import sys
from datetime import datetime
from typing import Optional

import numpy as np
import torch

__all__ = ["seed_all_rng", "collect_env_info"]


def seed_all_rng(seed: Optional[int] = None) -> int:
    """Seed python ``random``, numpy and torch with ``seed`` (None: a fresh random seed, logged so
    the run can be repeated). Returns the seed used."""
    if seed is None:
        seed = (os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")) % 2**31
        logging.getLogger(__name__).info(f"Using a generated random seed {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect_env_info() -> str:
    """A table of the platform, Python, key package versions and the compute devices."""
    from tabulate import tabulate

    import usvid

    rows = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", " ")),
        ("platform", platform.platform()),
        ("usvid", f"{usvid.__version__} @ {os.path.dirname(usvid.__file__)}"),
        ("numpy", np.__version__),
        ("PyTorch", f"{torch.__version__} @ {os.path.dirname(torch.__file__)}"),
        ("PyTorch debug build", torch.version.debug),
        ("torch threads", torch.get_num_threads()),
        ("CPU cores", os.cpu_count()),
        ("CUDA available", torch.cuda.is_available()),
    ]
    if torch.cuda.is_available():
        rows.append(("CUDA (torch built with)", torch.version.cuda))
        rows.append(("cuDNN", torch.backends.cudnn.version()))
        for index in range(torch.cuda.device_count()):
            rows.append((f"GPU {index}", torch.cuda.get_device_name(index)))
    for name in ("yacs", "PyYAML", "opencv-python-headless", "av", "tensorboard"):
        rows.append((name, _version(name)))
    return tabulate(rows)
