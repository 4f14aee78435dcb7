"""Writers that publish the current ``EventStorage``: JSON lines (``metrics.json``),
TensorBoard event files and the console's progress line."""

import datetime
import json
import logging
import os
import resource
import time
from collections import defaultdict
from typing import Dict, Optional, Tuple

import torch

from .event_storage import EventStorage, get_event_storage
from .metrics_file import last_iteration_in, rewind_metrics_file

__all__ = ["EventWriter", "JSONWriter", "TensorboardXWriter", "CommonMetricPrinter"]

logger = logging.getLogger(__name__)


class EventWriter:
    """Base class of writers that publish the current ``EventStorage``."""

    def write(self) -> None:
        raise NotImplementedError

    def resume_after(self, last_kept_iteration: int) -> None:
        """Called before the first write of a run resumed from a checkpoint: the resumed run
        writes again everything after ``last_kept_iteration`` (the interrupted run's last
        scheduled write), so a writer with persistent output drops or hides what the
        interrupted run wrote after it. ``PeriodicWriter`` calls it."""

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Append one JSON object per iteration per line (``{"iteration": i, name: value, ...}``).

    Scalars are smoothed as ``latest_with_smoothing_hint(window_size)`` says. Only iterations
    newer than the last one in the file are written, so resumed runs do not duplicate lines;
    values put at a later iteration (e.g. a final evaluation at ``max_iter``) get their own line.
    ``resume_after`` removes the lines a resumed run writes again (usvid/utils/metrics_file.py).
    The file is opened at the first write, so whoever owns the output folder may still move an
    earlier run's file aside after building the writer."""

    def __init__(self, json_file: str, window_size: int = 20):
        self._json_file = json_file
        self._window_size = window_size
        self._file_handle = None
        self._last_write = -1

    def _open(self):
        if self._file_handle is None:
            os.makedirs(os.path.dirname(os.path.abspath(self._json_file)), exist_ok=True)
            self._last_write = last_iteration_in(self._json_file)
            self._file_handle = open(self._json_file, "a", encoding="utf-8")
        return self._file_handle

    def write(self) -> None:
        storage = get_event_storage()
        file_handle = self._open()
        to_save: Dict[int, Dict[str, float]] = defaultdict(dict)
        for name, (value, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                to_save[itr][name] = value
        if not to_save:
            return
        for itr in sorted(to_save):
            line = dict(to_save[itr], iteration=itr)
            file_handle.write(json.dumps(line, sort_keys=True) + "\n")
        self._last_write = max(to_save)
        # flush, not fsync: a crashed process loses nothing that was flushed, and an fsync
        # (~5-10 ms here) every 20 steps of a sub-millisecond step would double training time.
        file_handle.flush()

    def resume_after(self, last_kept_iteration: int) -> None:
        removed = rewind_metrics_file(self._json_file, last_kept_iteration)
        if removed:
            logger.info(
                f"Removed {removed} line(s) after iteration {last_kept_iteration} from {self._json_file}; "
                f"the resumed run writes them again"
            )
        self._last_write = last_iteration_in(self._json_file)

    def close(self) -> None:
        if self._file_handle is not None:
            self._file_handle.close()


class TensorboardXWriter(EventWriter):
    """Write scalars, images and histograms to TensorBoard event files in ``log_dir``.

    The ``SummaryWriter`` (and its slow import) is created on the first write, so building the
    writer costs nothing on processes or runs that never write. Each write ends with a flush:
    events still queued when the process is killed would otherwise be lost for good, since the
    resumed run does not write again what preceded its checkpoint.

    In a resumed run (``resume_after(k)``) the ``SummaryWriter`` is created with
    ``purge_step=k + 1``: TensorBoard then hides whatever the interrupted run wrote after ``k``,
    which this run writes again. Without it, every resume would draw the replayed iterations
    as a second curve folded back onto the first."""

    def __init__(self, log_dir: str, window_size: int = 20, **summary_writer_kwargs):
        self._log_dir = log_dir
        self._window_size = window_size
        self._summary_writer_kwargs = summary_writer_kwargs
        self._writer = None
        self._last_write = -1

    def resume_after(self, last_kept_iteration: int) -> None:
        if self._writer is not None:
            raise RuntimeError("TensorboardXWriter.resume_after must come before the first write")
        self._summary_writer_kwargs.setdefault("purge_step", last_kept_iteration + 1)
        self._last_write = last_kept_iteration

    def _get_writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self._log_dir, **self._summary_writer_kwargs)
        return self._writer

    def write(self) -> None:
        storage = get_event_storage()
        writer = self._get_writer()
        new_last_write = self._last_write
        for name, (value, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                writer.add_scalar(name, value, itr)
                new_last_write = max(new_last_write, itr)
        self._last_write = new_last_write
        for img_name, img, itr in storage.images():
            writer.add_image(img_name, img, itr, dataformats="CHW")
        storage.clear_images()
        for params in storage.histograms():
            writer.add_histogram_raw(**params)
        storage.clear_histograms()
        writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _peak_memory_mb(use_cuda: bool) -> float:
    """Peak memory of this process: CUDA allocator peak when CUDA is used, else peak RSS."""
    if use_cuda:
        return torch.cuda.max_memory_allocated() / 1024.0 / 1024.0
    # RUSAGE_THREAD reports the same process-wide peak RSS on Linux without summing the CPU
    # times of every thread, which made RUSAGE_SELF take milliseconds now and then while
    # training (the console writer calls this every 20 iterations).
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


class CommonMetricPrinter(EventWriter):
    """Log one line of training progress: ETA, iteration, losses, the scalars whose name holds
    ``[metric]``, time, data_time, lr, max_mem.

    The line describes training progress, so it is labelled with the iteration of the newest
    training scalar, and not printed twice for one iteration nor for ``max_iter`` (the final
    evaluation's, after training)."""

    # The ETA uses the median step time of this many latest steps: robust to the slow steps of
    # evaluations and checkpoints, and cheap enough to sort on every write.
    ETA_WINDOW = 200

    def __init__(self, max_iter: Optional[int] = None, window_size: int = 20):
        """Without ``max_iter`` the line has no ETA."""
        self.logger = logging.getLogger(__name__)
        self._use_cuda = torch.cuda.is_available()  # asked once: it is not free on every write
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: Optional[Tuple[int, float]] = None  # (iteration, time) for ETA w/o `time`
        self._last_printed: Optional[int] = None

    @staticmethod
    def _training_iteration(storage: EventStorage) -> int:
        """The iteration of the newest smoothed (training) scalar: after a stopped run the
        storage is already at the next iteration, which no step reached."""
        hints = storage.smoothing_hints()
        hinted = [itr for name, (_, itr) in storage.latest().items() if hints[name]]
        return min(max(hinted), storage.iter) if hinted else storage.iter

    def _eta(self, storage: EventStorage, iteration: int) -> Optional[str]:
        if self._max_iter is None:
            return None
        remaining = self._max_iter - iteration - 1
        histories = storage.histories()
        if "time" in histories:
            seconds_per_iter = histories["time"].median(self.ETA_WINDOW)
        elif self._last_write is not None and iteration > self._last_write[0]:
            seconds_per_iter = (time.perf_counter() - self._last_write[1]) / (iteration - self._last_write[0])
        else:
            seconds_per_iter = None
        self._last_write = (iteration, time.perf_counter())
        if seconds_per_iter is None:
            return None
        return str(datetime.timedelta(seconds=int(seconds_per_iter * remaining)))

    def write(self) -> None:
        storage = get_event_storage()
        iteration = self._training_iteration(storage)
        if iteration == self._last_printed or iteration == self._max_iter:
            return
        self._last_printed = iteration
        histories = storage.histories()

        def smoothed(name: str) -> float:
            return histories[name].median(histories[name].count_samples(self._window_size))

        parts = []
        eta = self._eta(storage, iteration)
        if eta:
            parts.append(f"eta: {eta}")
        parts.append(f"iter: {iteration}")
        parts += [f"{name}: {smoothed(name):.4g}" for name in histories if "loss" in name]
        # Training statistics a model marks for the console ("[metric]accuracy"), after the losses.
        parts += [f"{name}: {smoothed(name):.4g}" for name in histories if "[metric]" in name]
        if "time" in histories:
            parts.append(f"time: {smoothed('time'):.4f}")
        if "data_time" in histories:
            parts.append(f"data_time: {smoothed('data_time'):.4f}")
        if "lr" in histories:
            parts.append(f"lr: {histories['lr'].latest():.5g}")
        parts.append(f"max_mem: {_peak_memory_mb(self._use_cuda):.0f}M")
        self.logger.info(" " + "  ".join(parts))
