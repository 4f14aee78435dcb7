"""Centralised metric storage for training: ``EventStorage`` and the history of each scalar.

Everything a training step or hook wants to report goes into the current ``EventStorage``
(``get_event_storage()``); writers (usvid/utils/event_writers.py) read it periodically. Keeping
producers and writers apart means a hook never needs to know where its numbers end up, and
writing can be throttled independently of logging.
"""

import statistics
from collections import deque
from contextlib import contextmanager
from itertools import islice
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

__all__ = [
    "EventStorage",
    "get_event_storage",
    "has_event_storage",
    "active_event_storage",
    "HistoryBuffer",
]

_CURRENT_STORAGE_STACK: List["EventStorage"] = []


def get_event_storage() -> "EventStorage":
    """The innermost open ``EventStorage``; raises if called outside a ``with EventStorage():``."""
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError(
            "get_event_storage() was called outside of an EventStorage context: wrap the code in "
            "`with EventStorage(start_iter):` (TrainerBase.train() opens one for the training loop)."
        )
    return _CURRENT_STORAGE_STACK[-1]


def has_event_storage() -> bool:
    """Whether an ``EventStorage`` is open (so that ``get_event_storage()`` would not raise)."""
    return bool(_CURRENT_STORAGE_STACK)


def active_event_storage() -> Optional["EventStorage"]:
    """The innermost open EventStorage, or None outside any ``with EventStorage(...)``: for
    code that runs both inside a training loop and without one (models, evaluations), and
    reports to the storage only when there is one."""
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class HistoryBuffer:
    """The history of one scalar: a bounded window of values and the iterations they belong to,
    plus running totals, so ``global_avg`` covers every value ever added even after old ones
    were evicted. Values and iterations live in two deques so that windowed statistics slice
    plain floats at C speed."""

    __slots__ = ("_values", "_iterations", "_count", "_global_sum")

    def __init__(self, max_length: int = 1_000_000):
        # deque(maxlen) evicts the oldest entry in O(1) when full.
        self._values: deque = deque(maxlen=max_length)
        self._iterations: deque = deque(maxlen=max_length)
        self._count = 0
        self._global_sum = 0.0

    def update(self, value: float, iteration: Optional[float] = None) -> None:
        if iteration is None:
            iteration = self._count
        self._values.append(value)
        self._iterations.append(iteration)
        self._count += 1
        self._global_sum += value

    def latest(self) -> float:
        return self._values[-1]

    def _last_values(self, window_size: int) -> List[float]:
        return list(islice(reversed(self._values), window_size))

    def median(self, window_size: int) -> float:
        """Median of the last ``window_size`` values."""
        return statistics.median(self._last_values(window_size))

    def avg(self, window_size: int) -> float:
        """Mean of the last ``window_size`` values."""
        values = self._last_values(window_size)
        return sum(values) / len(values)

    def global_avg(self) -> float:
        """Mean of every value ever added, including evicted ones."""
        return self._global_sum / self._count

    def values(self) -> List[Tuple[float, float]]:
        """``(value, iteration)`` pairs, oldest first."""
        return list(zip(self._values, self._iterations))

    def state_dict(self, recent: int) -> Dict[str, Any]:
        """The last ``recent`` entries plus the running totals: enough for every windowed
        statistic over at most ``recent`` values, and for ``global_avg``, to continue exactly."""
        newest_first = zip(islice(reversed(self._values), recent), islice(reversed(self._iterations), recent))
        entries = list(newest_first)[::-1]
        return {"recent": entries, "count": self._count, "global_sum": self._global_sum}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._values.clear()
        self._iterations.clear()
        for value, iteration in state["recent"]:
            self._values.append(float(value))
            self._iterations.append(iteration)
        self._count = int(state["count"])
        self._global_sum = float(state["global_sum"])

    def count_samples(self, window_size: int) -> int:
        """How many of the latest values were put within the last ``window_size`` iterations.

        A metric written every k iterations (lazy metric gathering) then gets smoothed over the
        same span of iterations as one written every iteration, not over k times as many."""
        if not self._iterations:
            return 0
        oldest_in_window = self._iterations[-1] - window_size
        samples = 0
        for iteration in reversed(self._iterations):
            if iteration <= oldest_in_window:
                break
            samples += 1
        return samples


class EventStorage:
    """Scalars, images and histograms reported during training, keyed by name and iteration.

    Use as a context manager; inside it ``get_event_storage()`` returns this object."""

    MAX_PENDING = 10_000  # queued scalars taken in even if nothing reads them

    def __init__(self, start_iter: int = 0):
        self._history: Dict[str, HistoryBuffer] = {}
        self._smoothing_hints: Dict[str, bool] = {}
        self._latest_scalars: Dict[str, Tuple[float, int]] = {}
        # Scalars put since the last read, as (name, value, iteration): see put_scalar.
        self._pending: List[Tuple[str, float, int]] = []
        self._iter = int(start_iter)
        self._current_prefix = ""
        self._vis_data: List[Tuple[str, torch.Tensor, int]] = []
        self._histograms: List[Dict[str, Any]] = []

    # ---- scalars -------------------------------------------------------------------------
    def put_scalar(self, name: str, value: Any, smoothing_hint: bool = True, cur_iter: Optional[int] = None) -> None:
        """Record ``value`` for ``name`` at ``cur_iter`` (default: the current iteration).

        ``smoothing_hint`` tells writers whether a windowed median is meaningful (losses, times)
        or whether the raw latest value must be shown (learning rate, evaluation results).

        The value is checked and converted now but only queued: the histories take in the queue
        when they are next read (by a writer every few iterations, or any reading method), in one
        tight loop. A training step that puts a handful of scalars then pays for a list append
        each, which matters when the step itself takes a fraction of a millisecond."""
        name = self._current_prefix + name
        if self._smoothing_hints.setdefault(name, smoothing_hint) != smoothing_hint:
            self._raise_hint_conflict(name, smoothing_hint)
        self._pending.append((name, float(value), self._iter if cur_iter is None else int(cur_iter)))
        if len(self._pending) >= self.MAX_PENDING:  # nobody reads (no writers): stay bounded
            self._ingest_pending()

    def put_scalars(self, *, smoothing_hint: bool = True, cur_iter: Optional[int] = None, **kwargs) -> None:
        """``put_scalar`` for each keyword argument, with one hint and iteration for all; the
        batch costs one call (the trainer puts its losses this way on every step)."""
        cur_iter = self._iter if cur_iter is None else int(cur_iter)
        prefix, hints, pending = self._current_prefix, self._smoothing_hints, self._pending
        for name, value in kwargs.items():
            name = prefix + name
            if hints.setdefault(name, smoothing_hint) != smoothing_hint:
                self._raise_hint_conflict(name, smoothing_hint)
            pending.append((name, float(value), cur_iter))
        if len(pending) >= self.MAX_PENDING:
            self._ingest_pending()

    def _raise_hint_conflict(self, name: str, smoothing_hint: bool) -> None:
        raise ValueError(
            f"Scalar {name!r} was put with smoothing_hint={smoothing_hint} but earlier with "
            f"smoothing_hint={self._smoothing_hints[name]}; use one hint per scalar."
        )

    def _ingest_pending(self) -> None:
        """Move the queued scalars into their histories and the latest values, in put order."""
        if not self._pending:
            return
        histories, latest = self._history, self._latest_scalars
        for name, value, cur_iter in self._pending:
            history = histories.get(name)
            if history is None:
                history = histories[name] = HistoryBuffer()
            history.update(value, cur_iter)
            latest[name] = (value, cur_iter)
        self._pending.clear()

    def history(self, name: str) -> HistoryBuffer:
        self._ingest_pending()
        history = self._history.get(name)
        if history is None:
            raise KeyError(f"No history metric available for {name!r}; known: {sorted(self._history)}")
        return history

    def histories(self) -> Dict[str, HistoryBuffer]:
        self._ingest_pending()
        return self._history

    def latest(self) -> Dict[str, Tuple[float, int]]:
        """``{name: (value, iteration)}`` of the most recent value of every scalar."""
        self._ingest_pending()
        return self._latest_scalars

    def latest_with_smoothing_hint(self, window_size: int = 20) -> Dict[str, Tuple[float, int]]:
        """Like ``latest()``, but hinted scalars are the median over the last ``window_size``
        iterations, which is what writers show so that one noisy step does not dominate."""
        self._ingest_pending()
        result = {}
        for name, (value, itr) in self._latest_scalars.items():
            if self._smoothing_hints[name]:
                history = self._history[name]
                value = history.median(history.count_samples(window_size))
            result[name] = (value, itr)
        return result

    # ---- checkpointing ------------------------------------------------------------------
    # Writers smooth over a window of recent values, so a resumed run must start with the same
    # recent history as the interrupted one to write the same metrics.json values.
    CHECKPOINTED_VALUES = 1000

    def state_dict(self) -> Dict[str, Any]:
        """Scalar histories (the last ``CHECKPOINTED_VALUES`` values of each), smoothing hints and
        latest values; images and histograms are transient and not kept."""
        self._ingest_pending()
        return {
            "histories": {name: h.state_dict(self.CHECKPOINTED_VALUES) for name, h in self._history.items()},
            "smoothing_hints": dict(self._smoothing_hints),
            "latest_scalars": dict(self._latest_scalars),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore scalar histories saved by ``state_dict`` (replacing everything put so far);
        the current iteration is kept."""
        self._pending = []
        self._history = {}
        for name, history_state in state["histories"].items():
            self._history[name] = HistoryBuffer()
            self._history[name].load_state_dict(history_state)
        self._smoothing_hints = dict(state["smoothing_hints"])
        self._latest_scalars = {name: (float(v), int(i)) for name, (v, i) in state["latest_scalars"].items()}

    def discard_latest(self, name: str) -> None:
        """Stop offering ``name``'s latest value to writers (its history is kept) until it is put
        again: for a series that restarts with a gap, e.g. step times after a resume, whose
        restored latest value would otherwise be written as if it were new."""
        self._ingest_pending()
        self._latest_scalars.pop(name, None)

    def smoothing_hints(self) -> Dict[str, bool]:
        return self._smoothing_hints

    def count_samples(self, name: str, window_size: int = 20) -> int:
        """How many of ``name``'s latest values were put within its last ``window_size``
        iterations (see ``HistoryBuffer.count_samples``)."""
        return self.history(name).count_samples(window_size)

    # ---- images and histograms -----------------------------------------------------------
    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Queue an image (CHW, float in [0, 1] or uint8, C in {1, 3}) for the writers."""
        if img_tensor.dim() != 3 or img_tensor.shape[0] not in (1, 3):
            raise ValueError(
                f"put_image({img_name!r}): expected a CHW tensor with 1 or 3 channels, "
                f"got shape {tuple(img_tensor.shape)}"
            )
        if img_tensor.dtype != torch.uint8:
            if not img_tensor.is_floating_point():
                raise ValueError(f"put_image({img_name!r}): dtype must be float or uint8, got {img_tensor.dtype}")
            low, high = float(img_tensor.min()), float(img_tensor.max())
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"put_image({img_name!r}): float images must lie in [0, 1], got [{low:.4g}, {high:.4g}]"
                )
        self._vis_data.append((self._current_prefix + img_name, img_tensor.detach().cpu(), self._iter))

    def put_histogram(self, hist_name: str, hist_tensor: torch.Tensor, bins: int = 1000) -> None:
        """Queue a histogram of ``hist_tensor``'s values (computed now, in ``bins`` buckets)."""
        values = hist_tensor.detach().float().flatten().cpu()
        if values.numel() == 0:
            raise ValueError(f"put_histogram({hist_name!r}): the tensor is empty")
        ht_min, ht_max = values.min().item(), values.max().item()
        counts = torch.histc(values, bins=bins, min=ht_min, max=ht_max)
        edges = torch.linspace(ht_min, ht_max, steps=bins + 1)
        self._histograms.append(
            {
                "tag": self._current_prefix + hist_name,
                "min": ht_min,
                "max": ht_max,
                "num": values.numel(),
                "sum": values.sum().item(),
                "sum_squares": (values**2).sum().item(),
                "bucket_limits": edges[1:].tolist(),
                "bucket_counts": counts.tolist(),
                "global_step": self._iter,
            }
        )

    def images(self) -> List[Tuple[str, torch.Tensor, int]]:
        """Queued images as ``(name, CHW tensor, iteration)``."""
        return self._vis_data

    def histograms(self) -> List[Dict[str, Any]]:
        """Queued histograms, each a dict of ``SummaryWriter.add_histogram_raw`` arguments."""
        return self._histograms

    def clear_images(self) -> None:
        self._vis_data = []

    def clear_histograms(self) -> None:
        self._histograms = []

    # ---- iteration and scoping -----------------------------------------------------------
    @property
    def iter(self) -> int:
        return self._iter

    @iter.setter
    def iter(self, value: int) -> None:
        self._iter = int(value)

    # Another name of ``iter``, the same property (detectron2 has both).
    iteration = iter

    def step(self) -> None:
        self._iter += 1

    @contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix every name put inside the block with ``name/`` (scopes nest)."""
        old_prefix = self._current_prefix
        self._current_prefix = old_prefix + name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self, "EventStorage contexts were exited out of order"
        _CURRENT_STORAGE_STACK.pop()
