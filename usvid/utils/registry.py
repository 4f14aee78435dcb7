"""A name -> object registry, so configs can name the classes they build (as in detectron2)."""

import difflib
from typing import Any, Callable, Dict, Iterator, Optional, Tuple


class Registry:
    """Maps names to objects (classes or functions) registered with ``@REGISTRY.register()``.

    The error for an unknown name lists the registered names and the closest match, because the
    name almost always comes from a config file typed by hand.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: Dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            raise KeyError(f"An object named '{name}' was already registered in the '{self._name}' registry")
        self._obj_map[name] = obj

    def register(self, obj: Optional[Any] = None, name: Optional[str] = None) -> Any:
        """Use as ``@REG.register()`` / ``@REG.register(name="X")`` or call ``REG.register(obj)``."""
        if obj is None:

            def deco(func_or_class: Callable) -> Callable:
                self._do_register(name or func_or_class.__name__, func_or_class)
                return func_or_class

            return deco
        self._do_register(name or obj.__name__, obj)
        return obj

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            close = difflib.get_close_matches(name, list(self._obj_map), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(
                f"No object named '{name}' in the '{self._name}' registry. Registered: {sorted(self._obj_map)}.{hint}"
            )
        return self._obj_map[name]

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[Tuple[str, Any]]:
        return iter(self._obj_map.items())

    def __repr__(self) -> str:
        return f"Registry(name={self._name!r}, items={sorted(self._obj_map)})"
