"""Graceful preemption: SIGTERM / SIGINT end training at a step boundary with a checkpoint.

A cluster scheduler (or Ctrl-C) asks a job to stop with SIGTERM / SIGINT. Killing the trainer
in the middle of a step would lose everything since the last periodic checkpoint; instead the
first signal only sets a flag, the current step finishes, a checkpoint of that iteration is
saved, the writers are flushed (``after_train``) and :class:`TrainingPreempted` ends the
process with exit code ``128 + signal`` and a message saying how to resume. A second signal
means "now": the data-loader workers are killed and the process exits at once.

In a multi-process run the flag is OR-reduced across ranks after every step, so a signal that
reaches only one rank still stops all of them at the same iteration (saving is a collective).
"""

import logging
import multiprocessing
import os
import shlex
import signal
import sys
import threading
from typing import Any, Dict, Optional

import torch
import torch.distributed as dist

from ..checkpoint import Checkpointer, PeriodicCheckpointer
from ..utils import comm
from .train_loop import HookBase

__all__ = ["PreemptionHook", "TrainingPreempted", "resume_command"]

logger = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingPreempted(SystemExit):
    """Raised by ``DefaultTrainer.train`` after a signal stopped training with a checkpoint.

    A ``SystemExit`` so that an uncaught one ends the script with ``code`` (128 + signal number,
    the shell convention for "ended by this signal") and no traceback; ``message`` says how to
    resume."""

    def __init__(self, signum: int, iteration: int, message: str):
        super().__init__(128 + signum)
        self.signum = signum
        self.iteration = iteration
        self.message = message


def resume_command(*flags: str) -> str:
    """The command line of this process with ``--resume`` (and ``flags``) added, each once."""
    argv = list(sys.argv)
    for flag in ("--resume",) + flags:
        if flag not in argv:
            # Before the trailing KEY VALUE overrides, where argparse still reads options.
            argv.insert(1, flag)
    return shlex.join([sys.executable] + argv)


class PreemptionHook(HookBase):
    """Turn SIGTERM / SIGINT into "finish this step, save, stop" (see the module docstring).

    Installs its signal handlers in ``before_train`` and restores the previous ones in
    ``after_train``; runs after every other hook (priority 95), so the checkpoint holds the
    state of all of them after the interrupted step. ``signal_received`` is the signal number
    that stopped training (None if none did).
    """

    priority = 95

    def __init__(
        self,
        checkpointer: Checkpointer,
        file_prefix: str = "model",
        periodic_checkpointer: Optional[PeriodicCheckpointer] = None,
    ):
        """With ``periodic_checkpointer`` the checkpoint is saved through it, so it counts
        towards (and is deleted by) its ``max_to_keep`` rotation like a periodic one."""
        self._checkpointer = checkpointer
        self._file_prefix = file_prefix
        self._periodic_checkpointer = periodic_checkpointer
        self._pending: Optional[int] = None  # set by the handler, read after each step
        self._steps_done = False  # the loop has ended: a signal now stops after_train's work
        self._last_iteration = -1  # the last step done (when _steps_done)
        self._previous_handlers: Dict[int, Any] = {}
        self.signal_received: Optional[int] = None
        self.stopped_after: Optional[int] = None  # the iteration the checkpoint holds
        self.checkpoint_path: Optional[str] = None

    def before_train(self):
        self._pending = self.signal_received = self.stopped_after = self.checkpoint_path = None
        self._steps_done = False
        if threading.current_thread() is not threading.main_thread():
            logger.warning("Training runs outside the main thread: SIGTERM/SIGINT cannot be caught for a graceful stop")
            return
        for signum in HANDLED_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._handle)

    def after_train(self):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self._pending is not None:
            # Only async-signal-tolerant work here: kill our workers, then leave.
            sys.stderr.write(f"\nSecond {name}: exiting now without a checkpoint.\n")
            sys.stderr.flush()
            for child in multiprocessing.active_children():
                child.kill()
            os._exit(128 + signum)
        self._pending = signum
        if self._steps_done:
            # No step is running: the last checkpoint is saved, and the work left (the final
            # evaluation) is what the user wants to stop. The exception leaves it at once.
            raise self._stopped_after_training(signum)
        sys.stderr.write(
            f"\n{name} received: finishing the current step, then saving a checkpoint "
            f"(send it again to exit at once).\n"
        )
        sys.stderr.flush()

    def after_step(self):
        signum = self._agreed_signal()
        iteration = self.trainer.iter
        last_step = self.trainer.should_stop or iteration >= self.trainer.max_iter - 1
        if signum is None:
            self._steps_done, self._last_iteration = last_step, iteration
            return
        if self._periodic_checkpointer is not None:
            self.checkpoint_path = self._periodic_checkpointer.save_iteration(iteration)
        else:
            basename = f"{self._file_prefix}_{iteration:07d}"
            self._checkpointer.save(basename, iteration=iteration)
            self.checkpoint_path = os.path.join(self._checkpointer.save_dir, basename + ".pth")
        self.signal_received, self.stopped_after = signum, iteration
        self.trainer.should_stop = True
        if last_step:
            # Training is complete: stop here, before the final evaluation in after_train
            # (which runs only when the loop finished), as the user asked.
            raise self._stopped_after_training(signum)

    def _stopped_after_training(self, signum: int) -> TrainingPreempted:
        """The exception for a signal once every step is done: training is complete and its
        last checkpoint saved, and what remains (the final evaluation) is skipped."""
        name = signal.Signals(signum).name
        checkpoint = self.checkpoint_path or self._checkpointer.get_checkpoint_file() or "none"
        last_iteration = self._last_iteration if self.stopped_after is None else self.stopped_after
        message = (
            f"{name} received after the last training iteration ({last_iteration}): the final evaluation "
            f"is skipped (or stopped), the trained weights are kept in {checkpoint}. Evaluate them with:\n"
            f"  {resume_command('--eval-only')}"
        )
        return TrainingPreempted(signum, last_iteration, message)

    def _agreed_signal(self) -> Optional[int]:
        """This rank's pending signal, or -- with several ranks -- any rank's (one small
        all_reduce per step), so that every rank stops after the same iteration."""
        if comm.get_world_size() == 1:
            return self._pending
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([self._pending or 0], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None

    def preempted_error(self) -> TrainingPreempted:
        """The exception that ends the process after a preempted ``train()``."""
        name = signal.Signals(self.signal_received).name
        message = (
            f"Training stopped by {name} after iteration {self.stopped_after}; checkpoint saved to "
            f"{self.checkpoint_path}. Resume with:\n  {resume_command()}"
        )
        return TrainingPreempted(self.signal_received, self.stopped_after, message)
