"""Suite-wide settings: pytest-xdist runs two workers on the 2-core CI machine, so each worker
uses one intra-op thread to avoid oversubscription (which makes timings and runs erratic)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
