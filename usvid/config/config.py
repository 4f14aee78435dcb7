"""yacs-based config node with ``_BASE_`` inheritance (detectron2 semantics) and errors that say
what is wrong and where: the key, the file it came from and the closest valid keys."""

import difflib
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml
from yacs.config import CfgNode as _YacsCfgNode

__all__ = [
    "CfgNode",
    "get_cfg",
    "resolve_device",
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "register_renamed_key",
]

BASE_KEY = "_BASE_"
COMMAND_LINE = "the command-line overrides"

# Keys that were renamed, old dotted name -> new one: a config or command line that still uses
# the old name gets an error naming the new key instead of a guess among similar names.
_RENAMED_KEYS: Dict[str, str] = {}


def register_renamed_key(old_key: str, new_key: str) -> None:
    """Make ``old_key`` (a dotted name no longer in the tree) an error that names ``new_key``."""
    _RENAMED_KEYS[old_key] = new_key


class ConfigError(ValueError):
    """Base class of every config error raised by usvid."""


class ConfigKeyError(ConfigError, KeyError):
    """A key that the config tree does not define."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class ConfigTypeError(ConfigError):
    """A value whose type does not match the default value's type."""


class ConfigFileError(ConfigError):
    """A config file that cannot be parsed (invalid YAML, not a mapping, a ``_BASE_`` cycle)."""


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """A config file (or a ``_BASE_`` it names) that does not exist."""


class CfgNode(_YacsCfgNode):
    """A yacs CfgNode whose YAML files may inherit from a ``_BASE_`` file (relative to the file).

    Files are merged one at a time from the root ``_BASE_`` down to the given file, so an error
    names the exact file that holds the bad key or value.
    """

    # ----------------------------------------------------------- loading YAML
    @classmethod
    def load_yaml_chain(cls, filename: str) -> List[Tuple[str, Dict[str, Any]]]:
        """``[(path, content), ...]`` from the root ``_BASE_`` down to ``filename``."""
        chain: List[Tuple[str, Dict[str, Any]]] = []
        path, referenced_by = filename, None
        while path is not None:
            if any(os.path.abspath(path) == os.path.abspath(seen) for seen, _ in chain):
                raise ConfigFileError(
                    f"{BASE_KEY} cycle: {referenced_by} inherits from {path}, which is already in the chain"
                )
            content = _read_yaml_mapping(path, referenced_by)
            base = content.pop(BASE_KEY, None)
            chain.append((path, content))
            referenced_by, path = path, (None if base is None else _resolve_base_path(base, path))
        return chain[::-1]

    # ---------------------------------------------------------------- merging
    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        for path, content in self.load_yaml_chain(cfg_filename):
            self._merge_dict(content, origin=path)

    def _has_key(self, full_key: str) -> bool:
        node: Any = self
        for part in full_key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def merge_from_list(self, cfg_list: Sequence[Any]) -> None:
        """Merge ``["SOLVER.BASE_LR", "0.01", ...]``; values are parsed as Python literals."""
        flags = [str(item) for item in cfg_list[0::2] if str(item).startswith("--")]
        if flags:
            raise ConfigError(
                f"{flags[0]!r} is a command-line option among the config overrides: put options such as "
                f"--resume or --eval-only before the KEY VALUE pairs"
            )
        if len(cfg_list) % 2 != 0:
            items = [str(item) for item in cfg_list]
            # The first key followed by another key is the one missing its value.
            keyless = next((i for i in range(0, len(items) - 1, 2) if self._has_key(items[i + 1])), len(items) - 1)
            raise ConfigError(
                f"Config overrides must be KEY VALUE pairs; got an odd number of items: {items[keyless]!r} "
                f"has no value (overrides: {items})"
            )
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            nested: Any = value
            for part in reversed(str(full_key).split(".")):
                nested = {part: nested}
            self._merge_dict(nested, origin=COMMAND_LINE)

    def _merge_dict(
        self, source: Dict[str, Any], origin: str, root: Optional["CfgNode"] = None, prefix: str = ""
    ) -> None:
        root = self if root is None else root
        if root.is_frozen():
            raise ConfigError(f"Cannot merge {origin} into a frozen config; call cfg.defrost() first")
        for key, raw in source.items():
            full_key = prefix + str(key)
            if key not in self:
                if not self.is_new_allowed():
                    raise ConfigKeyError(_unknown_key_message(full_key, origin, root))
                dict.__setitem__(self, key, self._decode_cfg_value(raw))
                continue
            current = self[key]
            if isinstance(current, CfgNode):
                if not isinstance(raw, dict):
                    raise ConfigTypeError(
                        f"Config key {full_key} (in {origin}) is a section of keys, not a value; got {raw!r}"
                    )
                current._merge_dict(raw, origin, root, full_key + ".")
            elif isinstance(raw, dict):
                raise ConfigKeyError(
                    f"Config key {full_key} (in {origin}) holds a value, it has no sub-keys {sorted(raw)}"
                )
            else:
                # A string for a string key is kept verbatim ("123" stays a string).
                value = raw if isinstance(current, str) and isinstance(raw, str) else self._decode_cfg_value(raw)
                dict.__setitem__(self, key, _coerce(value, current, full_key, origin))

    def all_keys(self, prefix: str = "", include_sections: bool = False) -> List[str]:
        """Every leaf key of the tree as a dotted name (e.g. ``SOLVER.BASE_LR``), and with
        ``include_sections`` the sections too (e.g. ``SOLVER``)."""
        keys = []
        for key, value in self.items():
            if isinstance(value, CfgNode):
                if include_sections:
                    keys.append(f"{prefix}{key}")
                keys += value.all_keys(f"{prefix}{key}.", include_sections)
            else:
                keys.append(f"{prefix}{key}")
        return keys


def _read_yaml_mapping(path: str, referenced_by: Optional[str]) -> Dict[str, Any]:
    """The YAML mapping in ``path``; every way a file can be unreadable is a ConfigFileError
    naming it, and the file whose ``_BASE_`` it is (binary garbage, a folder, no permission),
    never a bare traceback from the parser."""
    where = f" (the {BASE_KEY} of {referenced_by})" if referenced_by else ""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        content = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigFileNotFoundError(f"Config file not found: {os.path.abspath(path)}{where}") from None
    except UnicodeDecodeError as e:
        raise ConfigFileError(
            f"Config file {path}{where} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
            "is it a binary file?"
        ) from None
    except OSError as e:
        raise ConfigFileError(f"Cannot read config file {path}{where}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        location = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigFileError(f"Invalid YAML in {path}{where}{location}: {problem}") from e
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigFileError(f"Config file {path}{where} must hold a mapping of keys, got a {type(content).__name__}")
    return content


def _resolve_base_path(base: Any, referenced_by: str) -> str:
    """``_BASE_`` paths are relative to the file that names them."""
    if not isinstance(base, str) or not base:
        raise ConfigFileError(
            f"{BASE_KEY} in {referenced_by} must be the path of a YAML file (relative to it), got {base!r}"
        )
    base = os.path.expanduser(base)
    if os.path.isabs(base):
        return base
    return os.path.join(os.path.dirname(referenced_by), base)


def _unknown_key_message(full_key: str, origin: str, root: CfgNode) -> str:
    if full_key in _RENAMED_KEYS:
        return f"Config key {full_key} (in {origin}) was renamed to {_RENAMED_KEYS[full_key]}: use that name instead."
    valid = root.all_keys(include_sections=True)
    leaf = full_key.rsplit(".", 1)[-1]
    suggestions = difflib.get_close_matches(full_key, valid, n=3, cutoff=0.6)
    suggestions += [k for k in valid if k.rsplit(".", 1)[-1] == leaf and k not in suggestions]
    hint = f" Did you mean: {', '.join(suggestions[:5])}?" if suggestions else ""
    return f"Unknown config key {full_key} in {origin}.{hint}"


def _coerce(value: Any, original: Any, full_key: str, origin: str) -> Any:
    """``value`` converted to the default's type where that is lossless, else a clear error."""
    if value is None or original is None or type(value) is type(original):
        return value
    if isinstance(original, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(original)(value)
    if type(original) is float and type(value) is int:
        return float(value)
    raise ConfigTypeError(
        f"Config key {full_key} (in {origin}) expects type {type(original).__name__} "
        f"(default {original!r}) but got {type(value).__name__} {value!r}"
    )


def get_cfg() -> CfgNode:
    """A fresh copy of the full default config tree."""
    from .defaults import _C

    return _C.clone()


def resolve_device(cfg_device: str) -> str:
    """``MODEL.DEVICE`` as a torch device string: "auto" is "cuda" when available, else "cpu"."""
    import torch

    if cfg_device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(cfg_device)
    except RuntimeError:
        raise ConfigError(
            f"MODEL.DEVICE is {cfg_device!r}, not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"MODEL.DEVICE is {cfg_device!r} but CUDA is not available; use 'auto' or 'cpu'")
    return cfg_device
