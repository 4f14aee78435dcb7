"""yacs-based config node with ``_BASE_`` inheritance (detectron2 semantics)."""

import os
from typing import Any

import yaml
from yacs.config import CfgNode as _YacsCfgNode

BASE_KEY = "_BASE_"


class CfgNode(_YacsCfgNode):
    """A yacs CfgNode whose YAML files may inherit from a ``_BASE_`` file (relative to the file)."""

    @classmethod
    def load_yaml_with_base(cls, filename: str) -> dict:
        with open(filename, "r") as f:
            cfg = yaml.safe_load(f) or {}
        base = cfg.pop(BASE_KEY, None)
        if base is None:
            return cfg
        base_path = os.path.expanduser(base)
        if not os.path.isabs(base_path):
            base_path = os.path.join(os.path.dirname(filename), base_path)
        base_cfg = cls.load_yaml_with_base(base_path)
        _merge_dicts(cfg, base_cfg)
        return base_cfg

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        loaded = self.load_yaml_with_base(cfg_filename)
        self.merge_from_other_cfg(type(self)(loaded))


def _merge_dicts(src: dict, dst: dict) -> None:
    """Recursively merge ``src`` into ``dst`` in place (src wins)."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge_dicts(v, dst[k])
        else:
            dst[k] = v


def get_cfg() -> CfgNode:
    """A fresh copy of the full default config tree."""
    from .defaults import _C

    return _C.clone()
