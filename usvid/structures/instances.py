"""Per-image instance annotations or predictions, as detectron2's ``Instances``.

A frame's ground truth (``gt_boxes``, ``gt_classes``) and a detector's output (``pred_boxes``,
``scores``, ``pred_classes``) are both ``Instances``: a bag of named fields that all have one
entry per instance, so filtering, concatenation and device moves act on every field at once.
"""

import itertools
from typing import Any, Dict, List, Tuple, Union

import torch


class Instances:
    """Named per-instance fields of equal length, plus the image size ``(height, width)``.

    Fields are set and read as attributes (``inst.scores = t``; ``inst.scores``) or through
    ``set`` / ``get`` / ``has`` / ``remove``. A field may be anything with ``__len__`` and
    ``__getitem__`` (tensors, ``Boxes``, lists); the first field fixes the length.
    """

    def __init__(self, image_size: Tuple[int, int], **kwargs: Any):
        self._image_size = tuple(image_size)
        self._fields: Dict[str, Any] = {}
        for name, value in kwargs.items():
            self.set(name, value)

    @property
    def image_size(self) -> Tuple[int, int]:
        """``(height, width)`` of the image these instances belong to."""
        return self._image_size

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.set(name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, i.e. for fields.
        if name == "_fields" or name not in self._fields:
            raise AttributeError(f"Cannot find field '{name}' in the given Instances!")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Set a field; its length must equal that of the existing fields."""
        data_len = len(value)
        if len(self._fields):
            if len(self) != data_len:
                raise ValueError(
                    f"Adding a field '{name}' of length {data_len} to Instances of length "
                    f"{len(self)}: every field must have one entry per instance"
                )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        if name not in self._fields:
            raise KeyError(f"Cannot remove field '{name}': Instances has {sorted(self._fields)}")
        del self._fields[name]

    def get(self, name: str) -> Any:
        return self._fields[name]

    def get_fields(self) -> Dict[str, Any]:
        """The name -> value dict of all fields (the live dict, not a copy)."""
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """A new ``Instances`` whose fields that have ``.to`` are moved/cast with these args."""
        ret = Instances(self._image_size)
        for name, value in self._fields.items():
            if hasattr(value, "to"):
                value = value.to(*args, **kwargs)
            ret.set(name, value)
        return ret

    def __getitem__(self, item: Union[int, slice, torch.Tensor]) -> "Instances":
        """Select instances with an int, a slice, a bool mask or an index tensor; every field
        is indexed the same way. An int keeps a length-1 ``Instances``."""
        if type(item) is int:
            if item >= len(self) or item < -len(self):
                raise IndexError(f"Instances index {item} out of range for length {len(self)}")
            item = item % len(self)
            item = slice(item, item + 1)
        ret = Instances(self._image_size)
        for name, value in self._fields.items():
            ret.set(name, _index_field(value, item))
        return ret

    def __len__(self) -> int:
        for value in self._fields.values():
            return len(value)
        raise NotImplementedError("Empty Instances does not support __len__!")

    def __iter__(self):
        raise NotImplementedError("`Instances` object is not iterable!")

    @staticmethod
    def cat(instance_lists: List["Instances"]) -> "Instances":
        """Concatenate Instances of the same image size with the same field names."""
        if not instance_lists:
            raise ValueError("Instances.cat needs at least one Instances")
        if not all(isinstance(i, Instances) for i in instance_lists):
            raise TypeError("Instances.cat expects a list of Instances")
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        for other in instance_lists[1:]:
            if other.image_size != image_size:
                raise ValueError(f"Instances.cat: image sizes differ ({image_size} vs {other.image_size})")
            if set(other._fields) != set(instance_lists[0]._fields):
                raise ValueError(
                    "Instances.cat: field names differ "
                    f"({sorted(instance_lists[0]._fields)} vs {sorted(other._fields)})"
                )
        ret = Instances(image_size)
        for name, first in instance_lists[0]._fields.items():
            values = [i.get(name) for i in instance_lists]
            if isinstance(first, torch.Tensor):
                merged = torch.cat(values, dim=0)
            elif isinstance(first, list):
                merged = list(itertools.chain(*values))
            elif hasattr(type(first), "cat"):
                merged = type(first).cat(values)
            else:
                raise ValueError(f"Instances.cat: unsupported type {type(first)} of field '{name}'")
            ret.set(name, merged)
        return ret

    def __str__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._fields.items())
        length = len(self) if self._fields else 0
        return (
            f"Instances(num_instances={length}, image_height={self._image_size[0]}, "
            f"image_width={self._image_size[1]}, fields=[{fields}])"
        )

    __repr__ = __str__


def _index_field(value: Any, item: Any) -> Any:
    """Index one field; plain lists accept the same bool-mask / index-tensor selectors."""
    if not isinstance(value, list):
        return value[item]
    if isinstance(item, slice):
        return value[item]
    selector = torch.as_tensor(item)
    if selector.dtype == torch.bool:
        if selector.numel() != len(value):
            raise IndexError(f"Bool mask of length {selector.numel()} for a list field of length {len(value)}")
        selector = selector.nonzero().flatten()
    return [value[i] for i in selector.flatten().tolist()]
