"""Write model statistics to the active EventStorage, and nothing when there is none.

Models run both inside the trainer (a storage is open) and in plain inference or user code
(no storage), so they report through this helper instead of ``get_event_storage()``, which
raises outside a context.
"""

from usvid.utils.events import active_event_storage


def put_training_scalars(prefix: str, **values: float) -> None:
    """``storage.put_scalar(f"{prefix}/{name}", value)`` for each value, if a storage is open."""
    storage = active_event_storage()
    if storage is None:
        return
    for name, value in values.items():
        storage.put_scalar(f"{prefix}/{name}", float(value))
