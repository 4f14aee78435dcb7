"""Access to torchvision's compiled detection kernels when, and only when, torchvision imports.

torchvision is absent or unusable (CUDA-linked build) on the CPU machines this project targets,
so usvid's ops are written in pure PyTorch. Where torchvision does import (a GPU machine), its
fused kernels are faster, and the ops dispatch to them. The import is attempted lazily inside a
function and at most once, so merely importing ``usvid.layers`` never touches torchvision.
"""

import functools
from types import ModuleType
from typing import Optional


@functools.lru_cache(maxsize=1)
def torchvision_ops() -> Optional[ModuleType]:
    """``torchvision.ops`` if torchvision can be imported here, else ``None``."""
    try:
        import torchvision.ops  # noqa: F401 (a lazy, optional accelerator)
    except Exception:  # ImportError, or OSError/RuntimeError from a mismatched CUDA build
        return None
    return torchvision.ops
