"""Start a (multi-process) job with ``torch.distributed``: one process per GPU, or N CPU
processes with gloo when there is no GPU (so multi-process code is testable on any machine).

Under ``torchrun`` the processes already exist: launch() initialises from the environment
(RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and calls ``main_func`` directly, so the
same script works with ``--num-gpus N`` and with ``torchrun --nproc_per_node N``.
"""

import ctypes
import logging
import multiprocessing.connection
import os
import signal
import socket
import threading
from datetime import timedelta
from typing import Any, Callable, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm
from ..utils.cpu_budget import apply_process_share
from .lost_ranks import RankWatch, rendezvous_host
from .preemption import TrainingPreempted

__all__ = ["DEFAULT_TIMEOUT", "launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

logger = logging.getLogger(__name__)


def _find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launched_by_torchrun() -> bool:
    return all(variable in os.environ for variable in TORCHRUN_VARIABLES)


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: Sequence[Any] = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Run ``main_func(*args)`` on ``num_gpus_per_machine * num_machines`` processes.

    With a world size of 1 it is a plain call. Otherwise this machine spawns
    ``num_gpus_per_machine`` processes; ``dist_url="auto"`` picks a free local port (one machine
    only). If any process raises, the others are terminated and the original exception with its
    traceback is raised here (``torch.multiprocessing.ProcessRaisedException``). SIGTERM /
    SIGINT sent to this launcher are passed on to every process (whose trainers then stop with a
    checkpoint) and it exits with their ``128 + signal``; a process whose launcher died gets
    SIGTERM (Linux), so none trains on as an orphan.
    """
    if _launched_by_torchrun() and dist.is_initialized():  # the script set the group up itself
        main_func(*args)
        return
    if _launched_by_torchrun():
        _init_from_torchrun_environment(num_gpus_per_machine, timeout)
        _run_and_leave_group(main_func, args, rendezvous_host(None))
        return
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError(
                'dist_url="auto" only works on one machine; give a tcp:// address reachable by all machines'
            )
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if not dist_url:
        raise ValueError(f"A dist_url (e.g. tcp://host:port or 'auto') is needed to start {world_size} processes")
    if torch.cuda.is_available() and num_gpus_per_machine > torch.cuda.device_count():
        raise ValueError(
            f"{num_gpus_per_machine} processes per machine requested but only "
            f"{torch.cuda.device_count()} GPUs are visible"
        )
    if not comm.is_picklable(main_func) or not comm.is_picklable(tuple(args)):
        raise ValueError(
            "launch() needs a picklable main_func (a module-level function) and picklable args to spawn processes"
        )
    context = mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args), timeout),
        daemon=False,
        start_method="spawn",
        join=False,
    )
    _join_forwarding_signals(context)


class _SignalForwarded(Exception):
    """Interrupts the launcher's wait once SIGTERM/SIGINT was passed on to the workers."""


def _join_forwarding_signals(context) -> None:
    """Wait for the workers like ``torch.multiprocessing`` does (a failing worker ends the
    others at once), but pass SIGTERM / SIGINT sent to the launcher on to every worker, whose
    trainers then finish their step and save (usvid.engine.preemption). From then on the
    workers are not cut short: a worker that exits first with ``128 + signal`` would otherwise
    make the launcher terminate the others in the middle of writing the checkpoint."""
    forwarded: List[int] = []

    def forward(signum, frame):
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)
        forwarded.append(signum)
        if len(forwarded) == 1:
            raise _SignalForwarded()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS} if in_main_thread else {}
    try:
        try:
            while not context.join():
                pass
            return
        except _SignalForwarded:
            pass
        _wait_for_preempted_workers(context.processes, 128 + forwarded[0])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_for_preempted_workers(processes, preempted_code: int) -> None:
    """Wait until every worker has exited; any exit other than 0 or ``preempted_code`` (a
    worker that failed while stopping) terminates the rest, as a failure does in training.
    Ends this process with ``preempted_code`` like the workers."""
    pending = {process.sentinel: process for process in processes}
    while pending:
        for sentinel in multiprocessing.connection.wait(list(pending)):
            process = pending.pop(sentinel)
            process.join()
            if process.exitcode not in (0, preempted_code):
                for other in pending.values():
                    other.kill()
                raise RuntimeError(
                    f"Worker process {process.pid} exited with code {process.exitcode} while stopping "
                    "after a signal (see its error above); the other workers were killed"
                )
    raise SystemExit(preempted_code)


def _distributed_worker(
    local_rank: int,
    main_func,
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args,
    timeout,
) -> None:
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    _end_with_the_launcher()
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(
            _backend(), init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
        )
    except Exception as e:
        raise RuntimeError(
            f"Process group initialisation at {dist_url} failed (rank {global_rank} of {world_size})"
        ) from e
    comm.create_local_process_group(num_gpus_per_machine)
    apply_process_share(num_gpus_per_machine)
    _run_and_leave_group(main_func, args, rendezvous_host(dist_url))


def _end_with_the_launcher() -> None:
    """Ask Linux to send this worker SIGTERM when the launcher dies (even by SIGKILL), so a
    worker never trains on as an orphan: it stops after its step with a checkpoint."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        pass


def _init_from_torchrun_environment(num_gpus_per_machine: int, timeout: timedelta) -> None:
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    if num_gpus_per_machine != local_world_size:
        logger.warning(
            f"Launched by torchrun with {local_world_size} processes per machine; "
            f"num_gpus_per_machine={num_gpus_per_machine} is ignored."
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(_backend(), init_method="env://", timeout=timeout)
    comm.create_local_process_group(local_world_size)
    apply_process_share(local_world_size)


def _run_and_leave_group(main_func, args, reach_host: str = "127.0.0.1") -> None:
    comm.synchronize()
    watch = RankWatch(reach_host) if comm.get_world_size() > 1 else None
    try:
        main_func(*args)
    except TrainingPreempted as stopped:
        preempted = stopped.with_traceback(None)  # its frames hold the trainer and its DDP model
    except Exception as error:
        # A rank (or machine) that died shows up here as a connection error of the backend:
        # name it. The group is left untouched, as for any failure (see below).
        lost = watch.explain(error) if watch is not None else None
        if lost is not None:
            raise lost from error
        raise
    else:
        # A failing rank does not get here and leaves the group untouched: its peers may be
        # blocked in a collective, and the launcher (or torchrun) terminates them instead.
        comm.synchronize()
        _close(watch)
        comm.destroy_process_groups()
        return
    # Every rank stopped after the same step and saved together; leave the group before
    # exiting with 128 + signal. A group left to interpreter shutdown can abort the process
    # (exit code -6), which the launcher would report as a failure.
    _close(watch)
    comm.destroy_process_groups()
    raise preempted


def _close(watch: Optional[RankWatch]) -> None:
    if watch is not None:
        watch.close()
