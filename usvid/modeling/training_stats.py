"""Write model statistics to the active EventStorage, and nothing when there is none.

Models run both inside the trainer (a storage is open) and in plain inference or user code
(no storage); ``get_event_storage()`` raises outside a context, so the lookup is wrapped here
once instead of in every model.
"""

from typing import Optional

from usvid.utils.events import get_event_storage


def active_event_storage() -> Optional[object]:
    """The innermost open EventStorage, or None outside any ``with EventStorage(...)``."""
    try:
        return get_event_storage()
    except RuntimeError:
        return None


def put_training_scalars(prefix: str, **values: float) -> None:
    """``storage.put_scalar(f"{prefix}/{name}", value)`` for each value, if a storage is open."""
    storage = active_event_storage()
    if storage is None:
        return
    for name, value in values.items():
        storage.put_scalar(f"{prefix}/{name}", float(value))
