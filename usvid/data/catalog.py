"""Registries of datasets by name (detectron2's DatasetCatalog / MetadataCatalog).

A dataset is registered as a function that returns its list of video dicts, so registering is
free and the annotation files are read only when a dataset is really used.
"""

import copy
import threading
from typing import Any, Callable, Dict, List

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata"]


class _DatasetCatalog:
    """Maps a dataset name to the function that loads its video dicts."""

    def __init__(self) -> None:
        self._loaders: Dict[str, Callable[[], List[dict]]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, func: Callable[[], List[dict]]) -> None:
        """Register ``func`` (no arguments, returns the list of video dicts) under ``name``.

        Registering a name twice is an error (it usually means two datasets collide); call
        ``remove(name)`` first to replace one on purpose.
        """
        if not callable(func):
            raise TypeError(f"DatasetCatalog.register({name!r}, ...): expected a callable, got {func!r}")
        with self._lock:
            if name in self._loaders:
                raise KeyError(f"Dataset {name!r} is already registered; remove it first to replace it")
            self._loaders[name] = func

    def get(self, name: str) -> List[dict]:
        """Call the registered function of ``name`` and return its (fresh) list of video dicts."""
        try:
            func = self._loaders[name]
        except KeyError:
            registered = ", ".join(sorted(self._loaders)) or "(none)"
            raise KeyError(
                f"Dataset {name!r} is not registered. Registered datasets: {registered}. "
                "Register it with DatasetCatalog.register(name, func) "
                "(or usvid.data.register_builtin_datasets(cfg) for the built-in ones)."
            ) from None
        return func()

    def list(self) -> List[str]:
        return sorted(self._loaders)

    def remove(self, name: str) -> None:
        """Forget ``name`` (no error if it was never registered)."""
        with self._lock:
            self._loaders.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._loaders


class Metadata:
    """Attributes shared by a dataset (thing_classes, json_file, image_root, evaluator_type ...).

    As in detectron2, an attribute may be set again only to an equal value, so two code paths
    cannot silently disagree about a dataset; ``MetadataCatalog.remove`` starts afresh.
    """

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails, i.e. for attributes that were never set. Dunder
        # and "name" lookups (copy / pickle probing a half-built object) get a plain error.
        if key.startswith("__") or key == "name":
            raise AttributeError(key)
        known = ", ".join(sorted(self.as_dict())) or "(none)"
        raise AttributeError(f"Metadata of dataset {self.name!r} has no attribute {key!r}; it has: {known}")

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self.__dict__ and self.__dict__[key] != value:
            raise ValueError(
                f"Metadata {key!r} of dataset {self.name!r} is already {self.__dict__[key]!r}; "
                f"refusing to change it to {value!r} (MetadataCatalog.remove({self.name!r}) first)"
            )
        object.__setattr__(self, key, value)

    def set(self, **kwargs: Any) -> "Metadata":
        for key, value in kwargs.items():
            setattr(self, key, value)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def as_dict(self) -> Dict[str, Any]:
        return copy.copy(self.__dict__)

    def __repr__(self) -> str:
        return f"Metadata({self.__dict__!r})"


class _MetadataCatalog:
    """Maps a dataset name to its Metadata, created on first access."""

    def __init__(self) -> None:
        self._metadata: Dict[str, Metadata] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Metadata:
        with self._lock:
            if name not in self._metadata:
                self._metadata[name] = Metadata(name)
            return self._metadata[name]

    def list(self) -> List[str]:
        return sorted(self._metadata)

    def remove(self, name: str) -> None:
        with self._lock:
            self._metadata.pop(name, None)


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()
