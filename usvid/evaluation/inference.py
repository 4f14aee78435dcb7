"""Streaming (causal, frame-by-frame) inference over a video test set, as on a live scanner.

The test loader yields single-frame batches ``[frame_dict]`` with the frames of a video
consecutive and in order; the model keeps a buffer of earlier frames and is ``reset()`` at the
start of every video so no information leaks from one video into the next.
"""

import contextlib
import logging
import time
from typing import Iterator

import torch
from tqdm import tqdm

from ..utils import comm
from ..utils.cpu_budget import streaming_threads

__all__ = ["inference_on_video_dataset", "inference_context", "WARMUP_FRAMES"]

logger = logging.getLogger(__name__)

# Frames excluded from the speed measurement (lazy initialisation, allocator and cache warm-up).
WARMUP_FRAMES = 5


@contextlib.contextmanager
def inference_context(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode inside, the previous train/eval mode restored on exit, even after an error."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def inference_on_video_dataset(model: torch.nn.Module, data_loader, evaluator):
    """Run ``model`` causally over every frame of ``data_loader`` and return
    ``evaluator.evaluate()`` (any object with detectron2's DatasetEvaluator API).

    ``model.reset()`` is called at the start and whenever ``video_id`` changes. Speed (``FPS``)
    is the model's frames per second over the whole test set excluding the first
    ``WARMUP_FRAMES`` frames: the time of the model calls (``reset`` included, with
    ``torch.cuda.synchronize()`` on CUDA), not of data loading or evaluation, summed over the
    ranks' frames and times. It is logged and handed to ``evaluator.set_inference_fps`` when the
    evaluator has it.
    """
    core = comm.unwrap_model(model)
    if not callable(getattr(core, "reset", None)):
        raise AttributeError(
            f"{type(core).__name__} has no reset() method: streaming inference must clear the "
            "model's frame buffer at the start of every video"
        )
    synchronize = torch.cuda.synchronize if _on_cuda(core) else (lambda: None)
    total = len(data_loader) if hasattr(data_loader, "__len__") else None  # None: no ETA
    logger.info(f"Start streaming inference on {total if total is not None else 'an unknown number of'} frames")
    evaluator.reset()
    timed_frames, model_seconds = 0, 0.0
    current_video = object()  # equal to no video id, so the first frame resets the model
    start_wall = time.perf_counter()
    progress = tqdm(total=total, desc="inference", unit="frame", disable=not comm.is_main_process(), leave=False)
    with inference_context(model), torch.no_grad(), streaming_threads() as threads, progress:
        for index, inputs in enumerate(data_loader):
            if len(inputs) != 1:
                raise ValueError(
                    f"streaming inference takes single-frame batches [frame_dict]; batch {index} has "
                    f"{len(inputs)} frames (build the loader with build_video_detection_test_loader)"
                )
            threads.step()  # follows the other programs' load (a clock reading on most frames; not timed)
            synchronize()
            start = time.perf_counter()
            if inputs[0]["video_id"] != current_video:
                current_video = inputs[0]["video_id"]
                core.reset()
            outputs = model(inputs)
            synchronize()
            if index >= WARMUP_FRAMES:
                timed_frames += 1
                model_seconds += time.perf_counter() - start
            evaluator.process(inputs, outputs)
            progress.update(1)
    frames_and_seconds = comm.all_gather((timed_frames, model_seconds))
    all_frames = sum(frames for frames, _ in frames_and_seconds)
    all_seconds = sum(seconds for _, seconds in frames_and_seconds)
    fps = all_frames / all_seconds if all_seconds > 0 else float("nan")
    logger.info(
        f"Streaming inference done: {progress.n} frames in {time.perf_counter() - start_wall:.1f} s on this "
        f"rank; model speed {fps:.2f} FPS ({all_frames} timed frames on {comm.get_world_size()} rank(s), "
        f"first {WARMUP_FRAMES} frames of each rank excluded)"
    )
    if hasattr(evaluator, "set_inference_fps"):
        evaluator.set_inference_fps(fps)
    results = evaluator.evaluate()
    # detectron2's convention: an empty result on non-main ranks is returned as {}.
    return {} if results is None else results


def _on_cuda(model: torch.nn.Module) -> bool:
    parameter = next(model.parameters(), None)
    return parameter is not None and parameter.is_cuda
