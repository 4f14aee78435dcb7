"""Checkpoints that make a resumed run continue exactly where the interrupted one stopped.

A checkpoint file holds the model weights, the state of every registered checkpointable
(optimizer, LR scheduler, grad scaler, the trainer with its hook states, the training sampler),
the caller's extra values (e.g. ``iteration``) and the RNG states of every rank. Files are written
atomically so a crash during a save never leaves a truncated ``last_checkpoint`` target.
"""

import errno
import itertools
import logging
import os
import pickle
import random
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch
from tabulate import tabulate
from torch import nn

from ..utils import comm
from ..utils.file_io import atomic_write

__all__ = ["Checkpointer", "DetectionCheckpointer", "CheckpointLoadError", "CheckpointSaveError"]

LAST_CHECKPOINT_FILE = "last_checkpoint"
RNG_STATES_KEY = "rng_states"
# Every rank's buffers (e.g. BatchNorm statistics, which DDP without buffer sync keeps per rank);
# "model" holds only the saving rank's.
RANK_BUFFERS_KEY = "rank_buffers"


class CheckpointLoadError(RuntimeError):
    """A checkpoint file exists but cannot be read (truncated by a crash, or not a checkpoint)."""


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (full disk, no permission); the previous checkpoint
    and ``last_checkpoint`` are untouched."""


def _os_error_behind(error: BaseException) -> Optional[OSError]:
    """The OSError that caused ``error``: torch.save reports a failed write of its file object
    as a RuntimeError ("unexpected pos ...") with the real OSError only as its context."""
    while error is not None:
        if isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return None


# What the weights-only unpickler needs for a numpy uint32 array (the RNG keys of old checkpoints).
_NUMPY_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1
_NUMPY_ARRAY_GLOBALS = [_NUMPY_MULTIARRAY._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _capture_rng_state() -> Dict[str, Any]:
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    # numpy's key array as a list: checkpoints then hold only tensors and plain Python data,
    # which the weights-only unpickler reads.
    numpy_state = (name, keys.tolist(), position, has_gauss, cached_gaussian)
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _strip_prefix_if_present(state_dict: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """Drop ``prefix`` when every key has it (weights saved from a wrapped model)."""
    if not state_dict or not all(k.startswith(prefix) for k in state_dict):
        return state_dict
    return {k[len(prefix) :]: v for k, v in state_dict.items()}


def _shared_tensor_names(model: nn.Module) -> List[set]:
    """The state-dict names of every parameter or buffer that the model holds under more than
    one name (a submodule registered twice, e.g. ``self.y = self.x``), one set per tensor."""
    names_by_tensor: Dict[int, set] = {}
    tensors = itertools.chain(
        model.named_parameters(remove_duplicate=False), model.named_buffers(remove_duplicate=False)
    )
    for name, tensor in tensors:
        names_by_tensor.setdefault(id(tensor), set()).add(name)
    return [names for names in names_by_tensor.values() if len(names) > 1]


class Checkpointer:
    """Save and load a model together with any objects that have ``state_dict`` /
    ``load_state_dict``.

    ``save`` is a collective: it gathers the RNG state of every rank, so every rank must call it;
    only the ranks with ``save_to_disk`` (default: the main process) write the file.
    """

    def __init__(
        self, model: nn.Module, save_dir: str = "", *, save_to_disk: Optional[bool] = None, **checkpointables: Any
    ):
        self.model = comm.unwrap_model(model)
        self.save_dir = save_dir
        self.save_to_disk = comm.is_main_process() if save_to_disk is None else save_to_disk
        self.checkpointables: Dict[str, Any] = dict(checkpointables)
        self.logger = logging.getLogger(__name__)

    def add_checkpointable(self, key: str, checkpointable: Any) -> None:
        """Register one more object whose state goes into every checkpoint under ``key``."""
        if key in self.checkpointables or key in ("model", RNG_STATES_KEY, RANK_BUFFERS_KEY):
            raise KeyError(f"Checkpointable key {key!r} is already used")
        self.checkpointables[key] = checkpointable

    # ----------------------------------------------------------------- saving
    def save(self, name: str, **extra: Any) -> None:
        """Write ``{save_dir}/{name}.pth`` and point ``last_checkpoint`` at it (call on all ranks)."""
        rng_states = comm.all_gather(_capture_rng_state())
        rank_buffers = comm.all_gather(self._persistent_buffers()) if comm.get_world_size() > 1 else None
        if not self.save_dir or not self.save_to_disk:
            return
        data: Dict[str, Any] = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(extra)
        data[RNG_STATES_KEY] = rng_states
        if rank_buffers is not None:
            data[RANK_BUFFERS_KEY] = rank_buffers
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {path}")
        try:
            with atomic_write(path) as f:
                torch.save(data, f)
            self.tag_last_checkpoint(basename)
        except Exception as e:
            os_error = _os_error_behind(e)
            if os_error is None:
                raise
            reason = errno.errorcode.get(os_error.errno, "OSError")
            raise CheckpointSaveError(
                os_error.errno,
                f"Cannot write checkpoint {path}: {os_error.strerror or os_error} ({reason}). "
                f"The previous checkpoint is intact: {self.get_checkpoint_file() or 'none yet'}",
            ) from e

    def tag_last_checkpoint(self, basename: str) -> None:
        """Record ``basename`` (a file in save_dir) as the checkpoint a resume starts from."""
        with atomic_write(os.path.join(self.save_dir, LAST_CHECKPOINT_FILE), "w") as f:
            f.write(basename)

    # ---------------------------------------------------------------- loading
    def load(self, path: str, checkpointables: Optional[Iterable[str]] = None, strict: bool = False) -> Dict[str, Any]:
        """Load ``path`` into the model and the named checkpointables (default: all).

        Returns what the file holds beyond those (e.g. ``{"iteration": 99}``). A file without a
        ``"model"`` key is taken as a plain model state dict. A full load (``checkpointables`` None)
        also restores this rank's RNG state when the file carries one; loading only some
        checkpointables (e.g. weights for a new run) leaves the random streams alone.

        What does not fit the model (a parameter missing, unexpected or of another shape) is
        reported in a table, since fine-tuning from other weights loads only what fits; with
        ``strict`` it is a ``CheckpointLoadError`` instead, as for an evaluation. Resuming
        (``resume_or_load``) is always strict.
        """
        if not path:
            self.logger.info("No checkpoint given; the model keeps its initialisation.")
            return {}
        self.logger.info(f"Loading checkpoint from {path}")
        return self._apply(self._read_file(path), path, checkpointables, strict)

    def _apply(
        self, checkpoint: Dict[str, Any], path: str, checkpointables: Optional[Iterable[str]], strict: bool
    ) -> Dict[str, Any]:
        """Load a checkpoint already read from ``path``; see :meth:`load`."""
        if not isinstance(checkpoint.get("model"), dict):
            checkpoint = {"model": checkpoint}
        self._load_model(checkpoint.pop("model"), path, strict)
        keys = self.checkpointables.keys() if checkpointables is None else checkpointables
        absent = []
        for key in keys:
            if key in checkpoint:
                self.logger.info(f"Loading {key} from {path}")
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
            else:
                absent.append(key)
        if absent and checkpointables is None:  # a full resume that cannot restore everything
            self.logger.warning(
                f"{path} holds no state for {absent} (written by another tool or an older version?): "
                f"they start afresh, so this run does not continue the saved one exactly. It holds: "
                f"{sorted(k for k in checkpoint if k != RNG_STATES_KEY)}"
            )
        rng_states = checkpoint.pop(RNG_STATES_KEY, None)
        if rng_states is not None and checkpointables is None:
            # Only a full resume continues the saved random streams; loading weights (e.g.
            # MODEL.WEIGHTS for a new run) keeps the streams that SEED set up.
            self._restore_rng(rng_states, path)
        rank_buffers = checkpoint.pop(RANK_BUFFERS_KEY, None)
        if rank_buffers is not None and checkpointables is None and len(rank_buffers) == comm.get_world_size():
            # A full resume on as many ranks as saved: each rank continues with its own buffers.
            self.model.load_state_dict(rank_buffers[comm.get_rank()], strict=False)
        return checkpoint

    def _persistent_buffers(self) -> Dict[str, torch.Tensor]:
        """This rank's buffers that belong in the model's state dict, on the CPU."""
        state = self.model.state_dict()
        return {
            name: state[name].detach().cpu()
            for name, buffer in self.model.named_buffers()
            if name in state and not nn.parameter.is_lazy(buffer)
        }

    def _read_file(self, path: str) -> Dict[str, Any]:
        """The checkpoint dict in ``path``, or a CheckpointLoadError naming the file."""
        if not os.path.isfile(path):
            what = "is a folder, not a checkpoint file" if os.path.isdir(path) else "not found"
            raise FileNotFoundError(f"Checkpoint file {what}: {path}")
        try:
            # weights_only: a checkpoint is data (tensors, numbers, strings, containers), so
            # loading one cannot run code, whoever made the file. Checkpoints written before the
            # RNG state was stored as lists hold one numpy array; those types are allowed too.
            with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if "Unsupported global" not in str(e):  # not a pickle at all: garbage or cut short
                # torch wraps the unpickler's own error in advice about weights_only; keep the error.
                cause = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
                raise CheckpointLoadError(
                    f"Cannot read checkpoint {path}: the file is truncated or not a torch checkpoint "
                    f"({cause}). A resume falls back to the newest readable checkpoint."
                ) from e
            # torch's message goes on to suggest weights_only=False: not advice to pass on.
            raise CheckpointLoadError(
                f"Cannot read checkpoint {path}: it holds Python objects other than tensors and plain "
                f"data, which usvid does not unpickle (loading them could run arbitrary code)"
            ) from e
        except Exception as e:
            raise CheckpointLoadError(
                f"Cannot read checkpoint {path}: the file is truncated or not a torch checkpoint "
                f"({type(e).__name__}: {e}). A resume falls back to the newest readable checkpoint."
            ) from e
        if not isinstance(checkpoint, dict):
            raise CheckpointLoadError(f"Checkpoint {path} holds a {type(checkpoint).__name__}, expected a dict")
        return checkpoint

    def _load_model(self, state_dict: Dict[str, Any], path: str, strict: bool) -> None:
        """Load what fits; report missing, unexpected and shape-mismatched keys in one table
        (an error with ``strict``, before anything is loaded).

        A lazy module's uninitialised parameters (``nn.LazyLinear`` before its first forward)
        take the checkpoint's shape when loaded, so they have no shape to mismatch. A parameter
        shared by two submodules (``self.y = self.x``) has a name under each; it is loaded when
        the checkpoint holds it under either name, so the other name is not missing."""
        state_dict = _strip_prefix_if_present(state_dict, "module.")
        model_state = self.model.state_dict()
        rows: List[List[str]] = []
        loadable = {}
        for key, value in state_dict.items():
            expected = model_state.get(key)
            if (
                isinstance(value, torch.Tensor)
                and expected is not None
                and not nn.parameter.is_lazy(expected)
                and value.shape != expected.shape
            ):
                rows.append(
                    [
                        key,
                        "shape mismatch (skipped)",
                        f"checkpoint {tuple(value.shape)} vs model {tuple(expected.shape)}",
                    ]
                )
            else:
                loadable[key] = value
        mismatched = {row[0] for row in rows}
        loaded_through_alias = {
            key for names in _shared_tensor_names(self.model) if names & loadable.keys() for key in names
        }
        rows += [
            [key, "missing in checkpoint", ""]
            for key in model_state
            if key not in state_dict and key not in mismatched and key not in loaded_through_alias
        ]
        rows += [[key, "unexpected (not in model)", ""] for key in state_dict if key not in model_state]
        if rows and strict:
            problems = "; ".join(f"{key}: {problem}" for key, problem, _ in rows[:5])
            raise CheckpointLoadError(
                f"{path} does not fit this model ({len(rows)} of {len(model_state)} parameters and buffers "
                f"missing, unexpected or of another shape; first: {problems}). It was probably written for "
                f"another model: check MODEL.META_ARCHITECTURE and the MODEL.* sizes against the run "
                f"that wrote it (its config.yaml)."
            )
        self.model.load_state_dict(loadable, strict=False)
        if rows:
            table = tabulate(rows, headers=["key", "problem", "details"], tablefmt="pipe")
            self.logger.warning(f"Some model parameters of {path} were not loaded:\n{table}")

    def _restore_rng(self, rng_states: List[Dict[str, Any]], path: str) -> None:
        rank, world_size = comm.get_rank(), comm.get_world_size()
        if len(rng_states) != world_size:
            self.logger.warning(
                f"{path} holds RNG states of {len(rng_states)} ranks but this run has {world_size}; "
                "random streams will differ from the original run."
            )
        if rank < len(rng_states):
            _restore_rng_state(rng_states[rank])

    # ------------------------------------------------------- finding checkpoints
    def has_checkpoint(self) -> bool:
        return os.path.isfile(os.path.join(self.save_dir, LAST_CHECKPOINT_FILE))

    def get_checkpoint_file(self) -> str:
        """The path ``last_checkpoint`` points at, or "" when there is none."""
        try:
            with open(os.path.join(self.save_dir, LAST_CHECKPOINT_FILE)) as f:
                basename = f.read().strip()
        except FileNotFoundError:
            return ""
        return os.path.join(self.save_dir, basename)

    def get_all_checkpoint_files(self) -> List[str]:
        """Every ``.pth`` file in save_dir, sorted by name."""
        if not os.path.isdir(self.save_dir):
            return []
        return sorted(os.path.join(self.save_dir, f) for f in os.listdir(self.save_dir) if f.endswith(".pth"))

    def resume_or_load(self, path: str, resume: bool = True, strict: bool = False) -> Dict[str, Any]:
        """Resume from the last checkpoint in save_dir when asked and present; otherwise load only
        the model weights of ``path`` (a fresh run starting from pretrained weights; ``strict``:
        every weight must fit, as for an evaluation). A resume always needs every weight."""
        if resume and self.has_checkpoint():
            return self._resume_from_newest_valid()
        if resume:
            self.logger.warning(
                f"Asked to resume, but {self.save_dir} has no {LAST_CHECKPOINT_FILE}: starting from "
                f"{'the weights ' + repr(path) if path else 'the initialisation (no weights given)'} instead."
            )
        return self.load(path, checkpointables=[], strict=strict)

    def _resume_from_newest_valid(self) -> Dict[str, Any]:
        """Load the checkpoint ``last_checkpoint`` names; if it is missing or unreadable (a
        crash, a disk error, a file truncated by a copy) warn and fall back to the newest
        readable ``.pth`` in save_dir, so that one bad file costs some iterations, not the run."""
        tagged = self.get_checkpoint_file()
        others = sorted((f for f in self.get_all_checkpoint_files() if f != tagged), key=os.path.getmtime, reverse=True)
        problems = []
        for candidate in [tagged] + others:
            try:
                checkpoint = self._read_file(candidate)
            except (CheckpointLoadError, FileNotFoundError) as e:
                problems.append(str(e))
                self.logger.warning(f"Skipping an unusable checkpoint: {e}")
                continue
            if candidate != tagged:
                self.logger.warning(
                    f"Resuming from {candidate}, the newest readable checkpoint, instead of "
                    f"{tagged!r} named by {LAST_CHECKPOINT_FILE}: training repeats the iterations since."
                )
            self.logger.info(f"Loading checkpoint from {candidate}")
            return self._apply(checkpoint, candidate, None, strict=True)
        raise CheckpointLoadError(
            f"No readable checkpoint in {self.save_dir} to resume from:\n  " + "\n  ".join(problems)
        )


# detectron2's name for its checkpointer (there, fvcore's Checkpointer plus model-zoo loading).
DetectionCheckpointer = Checkpointer
