"""Metrics during training: the storage that producers put scalars, images and histograms into
(usvid/utils/event_storage.py) and the writers that publish it (usvid/utils/event_writers.py),
under the one name detectron2 users import them from.
"""

from . import event_storage, event_writers
from .event_storage import (  # noqa: F401 - re-exported (__all__ is built from the two modules')
    EventStorage,
    HistoryBuffer,
    active_event_storage,
    get_event_storage,
    has_event_storage,
)
from .event_writers import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter  # noqa: F401

__all__ = event_storage.__all__ + event_writers.__all__
