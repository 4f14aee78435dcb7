"""Where the frames of a COCO-video file are: the three conventions the public files use.

The released CVA-BUS and BUV folders hold ``root/rawframes/<category>/<video id>/000000.png``,
and their JSON files write ``file_name`` relative to ``rawframes`` ("benign/<id>/000000.png");
CVA-Net joins ``root/rawframes`` with it, while UltraDet's loader keeps only the base name of
``file_name`` and takes the folder from the video's ``name``. Files written for usvid before
write ``file_name`` relative to the root itself. One file uses one convention for all of its
frames, so the rule is chosen once per file (never frame by frame, which could silently mix
frames of two copies of a dataset) and logged, and the error for missing frames lists every
rule tried with what it looked for.
"""

import logging
import os
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["FrameRef", "FRAME_PATH_RULES", "resolve_frame_paths"]

logger = logging.getLogger(__name__)


class FrameRef(NamedTuple):
    """One frame as the JSON names it: its ``file_name`` and the ``name`` of its video (None
    when the file has no ``videos`` list or the video no name)."""

    file_name: str
    video_name: Optional[str]


def _joined(root: str, ref: FrameRef) -> Optional[str]:
    return os.path.join(root, ref.file_name)


def _under_rawframes(root: str, ref: FrameRef) -> Optional[str]:
    return os.path.join(root, "rawframes", ref.file_name)


def _video_folder_and_basename(root: str, ref: FrameRef) -> Optional[str]:
    if not ref.video_name:
        return None
    return os.path.join(root, "rawframes", ref.video_name, os.path.basename(ref.file_name))


# (how the rule is written in messages, the rule), in the order they are tried.
FRAME_PATH_RULES: Tuple[Tuple[str, Callable[[str, FrameRef], Optional[str]]], ...] = (
    ("image_root/file_name", _joined),
    ("image_root/rawframes/file_name", _under_rawframes),
    ("image_root/rawframes/<video name>/<basename(file_name)>", _video_folder_and_basename),
)


def _first_missing(paths: Sequence[Optional[str]]) -> Optional[int]:
    """Index of the first frame without a file under this rule (None: all exist). Stops early,
    so the usual case (the first rule fits) costs one stat per frame."""
    for i, path in enumerate(paths):
        if path is None or not os.path.isfile(path):
            return i
    return None


def _describe_failure(rule: str, paths: Sequence[Optional[str]], refs: Sequence[FrameRef]) -> str:
    if any(path is None for path in paths):
        return f"  {rule}: not applicable, {sum(p is None for p in paths)} frame(s) have no video name"
    missing = [p for p in paths if not os.path.isfile(p)]
    return f"  {rule}: {len(missing)} of {len(refs)} frame file(s) do not exist, e.g. {missing[0]}"


def resolve_frame_paths(refs: Sequence[FrameRef], image_root: str, source: str) -> List[str]:
    """The full path of every frame of ``source`` (an annotation file), by the first rule of
    FRAME_PATH_RULES under which every frame file exists. The rule used is logged; when no rule
    finds every frame, FileNotFoundError names each rule with its missing count and an example."""
    candidates = []
    for rule, build in FRAME_PATH_RULES:
        paths = [build(image_root, ref) for ref in refs]
        if _first_missing(paths) is None:
            logger.info(f"{source}: {len(refs)} frames found as {rule} (image_root={image_root})")
            return paths
        candidates.append((rule, paths))
    tried = "\n".join(_describe_failure(rule, paths, refs) for rule, paths in candidates)
    raise FileNotFoundError(
        f"{source}: frame files not found under image_root={image_root} by any of the "
        f"{len(candidates)} path rules tried (one rule must find every frame of the file):\n{tried}"
    )
