"""Metrics during training: the storage that producers put scalars, images and histograms into
(usvid/utils/event_storage.py) and the writers that publish it (usvid/utils/event_writers.py),
under the one name detectron2 users import them from.
"""

from . import event_storage, event_writers

__all__ = event_storage.__all__ + event_writers.__all__
