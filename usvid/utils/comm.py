"""Helpers for multi-process (torch.distributed) training; every function is a no-op on one process."""

import functools
import gc
import os
import pickle
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

# Set by launch(): the process group of the processes on this machine (for get_local_size).
_LOCAL_PROCESS_GROUP: Optional[dist.ProcessGroup] = None


def is_dist_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist_initialized() else 0


def get_local_rank() -> int:
    """Rank within this machine (launch() sets a local group; torchrun sets LOCAL_RANK)."""
    if not is_dist_initialized():
        return 0
    if _LOCAL_PROCESS_GROUP is None:
        return int(os.environ.get("LOCAL_RANK", 0))
    return dist.get_rank(group=_LOCAL_PROCESS_GROUP)


def get_local_size() -> int:
    if not is_dist_initialized():
        return 1
    if _LOCAL_PROCESS_GROUP is None:
        return int(os.environ.get("LOCAL_WORLD_SIZE", get_world_size()))
    return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)


def create_local_process_group(num_workers_per_machine: int) -> None:
    """Create one process group per machine and keep this machine's as the local group.

    Every rank must call this (``new_group`` is a collective over all ranks), which is why
    launch() does it right after ``init_process_group``.
    """
    global _LOCAL_PROCESS_GROUP
    world_size = get_world_size()
    if world_size % num_workers_per_machine != 0:
        raise ValueError(
            f"World size {world_size} is not a multiple of {num_workers_per_machine} processes per machine"
        )
    machine_rank = get_rank() // num_workers_per_machine
    for machine in range(world_size // num_workers_per_machine):
        ranks = list(range(machine * num_workers_per_machine, (machine + 1) * num_workers_per_machine))
        group = dist.new_group(ranks)
        if machine == machine_rank:
            _LOCAL_PROCESS_GROUP = group


def destroy_process_groups() -> None:
    """Leave every process group, dropping this module's references to them first.

    A group still referenced here (the local group, the cached object-collective group) would
    outlive ``dist.destroy_process_group`` and be freed during interpreter shutdown, where
    gloo's worker threads can no longer be joined cleanly and the process aborts
    ("terminate called without an active exception"). Freed now, the next
    ``init_process_group`` also starts without stale groups.
    """
    global _LOCAL_PROCESS_GROUP
    _LOCAL_PROCESS_GROUP = None
    _cpu_group.cache_clear()
    gc.collect()  # groups held by reference cycles (e.g. a finished trainer's DDP model)
    if is_dist_initialized():
        dist.destroy_process_group()


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a (Distributed)DataParallel wrapper (whose state_dict keys carry no
    ``module.`` prefix and which has the model's own methods, e.g. ``reset``); else ``model``."""
    if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        return model.module
    return model


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op on one process)."""
    if get_world_size() > 1:
        dist.barrier()


@functools.lru_cache
def _cpu_group() -> dist.ProcessGroup:
    """A gloo group for pickled objects, so object collectives never touch GPU memory.

    Created lazily on first use, which every rank reaches together because all_gather / gather
    are collectives themselves.
    """
    if dist.get_backend() == "nccl":
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def all_gather(data: Any, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gather any picklable object from every rank; returns the list ordered by rank."""
    if get_world_size() == 1:
        return [data]
    group = group or _cpu_group()
    output: List[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gather any picklable object on rank ``dst``; other ranks get an empty list."""
    if get_world_size() == 1:
        return [data]
    group = group or _cpu_group()
    if dist.get_rank(group) == dst:
        output: List[Any] = [None] * dist.get_world_size(group)
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def reduce_dict(input_dict: Dict[str, torch.Tensor], average: bool = True) -> Dict[str, torch.Tensor]:
    """Reduce a dict of scalar tensors onto rank 0 with one collective on a stacked tensor."""
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k] for k in names], dim=0)
        dist.reduce(values, dst=0)
        if dist.get_rank() == 0 and average:
            values /= world_size
        return dict(zip(names, values))


def shared_random_seed() -> int:
    """A random integer that is the same on every rank (rank 0's draw)."""
    seed = int(np.random.randint(2**31))
    return all_gather(seed)[0]


def is_picklable(obj: Any) -> bool:
    """Whether ``obj`` can be sent to another process (e.g. as a launch() argument)."""
    try:
        pickle.dumps(obj)
        return True
    except Exception:
        return False
