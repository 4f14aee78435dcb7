"""Access to torchvision's compiled detection kernels when, and only when, torchvision imports.

torchvision is absent or unusable (CUDA-linked build) on the CPU machines this project targets,
so usvid's ops are written in pure PyTorch. Where torchvision does import (a GPU machine), its
fused kernels are faster, and the ops dispatch to them. The import is attempted lazily inside a
function and at most once, so merely importing ``usvid.layers`` never touches torchvision.
"""

import functools
from types import ModuleType
from typing import Callable, Optional


@functools.lru_cache(maxsize=1)
def torchvision_ops() -> Optional[ModuleType]:
    """``torchvision.ops`` if torchvision can be imported here, else ``None``."""
    try:
        import torchvision.ops  # noqa: F401 (a lazy, optional accelerator)
    except Exception:  # ImportError, or OSError/RuntimeError from a mismatched CUDA build
        return None
    return torchvision.ops


def prefer_torchvision(name: str, pure: Callable) -> Callable:
    """The op ``name``: ``torchvision.ops.<name>`` where torchvision imports, else ``pure``, the
    pure-PyTorch implementation with the same signature and semantics, whose signature and
    docstring the op carries (one definition, so the two cannot drift apart)."""

    @functools.wraps(pure)
    def op(*args, **kwargs):
        tv_ops = torchvision_ops()
        return (pure if tv_ops is None else getattr(tv_ops, name))(*args, **kwargs)

    op.__name__ = op.__qualname__ = name
    return op
