"""The index sampler of distributed training (detectron2 semantics).

``TrainingSampler`` produces one infinite global stream of indices and gives rank ``r`` the
elements ``r, r + W, r + 2W, ...`` of it, so the union over ranks of one "global step" is the
same whatever the world size. Its position is checkpointable so a resumed run continues the
exact same stream.
"""

import itertools
import logging
import numbers
from typing import Any, Dict, Iterator, Optional

import torch
from torch.utils.data.sampler import Sampler

from ..utils import comm

__all__ = ["TrainingSampler"]

logger = logging.getLogger(__name__)


class TrainingSampler(Sampler[int]):
    """Infinite stream of indices in ``[0, size)``: one random permutation after another (or
    ``0..size-1`` repeated when ``shuffle=False``), sharded by rank.

    ``state_dict()`` holds the global position: the number of stream elements consumed by all
    ranks together (this rank's count times the world size, as every rank consumes equally).
    A new ``__iter__`` (e.g. a rebuilt data loader) continues from the current position.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: Optional[int] = None):
        if not isinstance(size, numbers.Integral) or size <= 0:
            raise ValueError(f"TrainingSampler needs a positive integer dataset size, got {size!r}")
        self._size = int(size)
        self._shuffle = shuffle
        # Every rank must draw the same permutations: a seed of None is agreed across ranks.
        self._seed = int(comm.shared_random_seed() if seed is None else seed)
        self._rank = comm.get_rank()
        self._world_size = comm.get_world_size()
        self._start = 0  # global position where the current stream began
        self._yielded = 0  # elements this rank has yielded since then

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def global_position(self) -> int:
        return self._start + self._yielded * self._world_size

    def __iter__(self) -> Iterator[int]:
        self._start, self._yielded = self.global_position, 0
        stream = itertools.islice(self._global_indices(), self._start + self._rank, None, self._world_size)
        for index in stream:
            self._yielded += 1
            yield index

    def _global_indices(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=generator).tolist()
            else:
                yield from range(self._size)

    def state_dict(self) -> Dict[str, Any]:
        return {"seed": self._seed, "size": self._size, "global_position": self.global_position}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue the stream of ``state`` at its position (on the next ``__iter__``)."""
        if state["size"] != self._size:
            logger.warning(
                f"TrainingSampler state is for a dataset of {state['size']} items, this one has "
                f"{self._size}; the index stream will differ from the original run."
            )
        self._seed = int(state["seed"])
        self._start, self._yielded = int(state["global_position"]), 0
