"""Built-in dataset names: the synthetic phantom (generated and cached on first use), CVA-BUS
and BUV (read where they were unpacked, in the layout they are released in).

``register_builtin_datasets(cfg)`` is what tools call, so that a config naming
"phantom_trainval" / "phantom_test" works on a fresh machine with no download: the phantom
described by ``DATASETS.PHANTOM.*`` is generated once into ``DATASETS.ROOT`` and reused after.
"""

import difflib
import json
import logging
import os
import shutil
from typing import List, Optional, Tuple

from ...config import ConfigError
from ...utils import comm
from ..catalog import DatasetCatalog, MetadataCatalog
from .coco_video import load_coco_video_json

__all__ = [
    "register_coco_video",
    "register_phantom",
    "register_cva_bus",
    "register_buv",
    "phantom_root",
    "prepare_phantom",
    "register_builtin_datasets",
    "load_ground_truth",
    "check_dataset_names",
]

logger = logging.getLogger(__name__)

SPLITS = ("trainval", "test")
# The file the phantom generator writes last; its presence marks a complete dataset folder.
PHANTOM_META_FILE = "phantom_meta.json"


def register_coco_video(name: str, json_file: str, image_root: str, class_agnostic: bool = True) -> None:
    """Register ``name`` as a COCO-video JSON, read lazily at DatasetCatalog.get(name).
    Registering a name again replaces it (so repeated setup calls are harmless).

    ``class_agnostic`` (default) makes every category a "lesion", as usvid's detectors and the
    video metrics treat them; ``False`` keeps the dataset's categories in the video dicts, of
    which the detectors train on the first only (see ``load_coco_video_json``)."""
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)
    DatasetCatalog.register(
        name, lambda: load_coco_video_json(json_file, image_root, name, class_agnostic=class_agnostic)
    )
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="ultrasound_video")


# BUV (CVA-Net's release): split name -> annotation file in the dataset folder.
BUV_FILES = {"train": "imagenet_vid_train_15frames.json", "val": "imagenet_vid_val.json"}


def _register_files(root: str, prefix: str, files: dict) -> List[str]:
    """Register ``{prefix}_{split}`` for each ``split -> file name`` of ``files`` under ``root``."""
    names = []
    for split, file_name in files.items():
        names.append(f"{prefix}_{split}")
        register_coco_video(names[-1], os.path.join(root, file_name), root)
    return names


def _register_splits(root: str, prefix: str) -> List[str]:
    return _register_files(root, prefix, {split: f"{split}.json" for split in SPLITS})


def register_phantom(root: str, prefix: str = "phantom") -> List[str]:
    """Register ``{prefix}_trainval`` and ``{prefix}_test`` for a phantom folder (root/trainval.json,
    root/test.json, frames under root). Lazy: nothing is read until DatasetCatalog.get."""
    return _register_splits(root, prefix)


def register_cva_bus(root: str) -> List[str]:
    """Register ``cva_bus_trainval`` / ``cva_bus_test`` for the CVA-BUS folder as released
    (root/trainval.json, root/test.json, root/rawframes/{benign,malignant}/<video>/000000.png).
    Benign and malignant lesions are both class 0, "lesion"."""
    return _register_splits(root, "cva_bus")


def register_buv(root: str) -> List[str]:
    """Register ``buv_train`` (root/imagenet_vid_train_15frames.json) and ``buv_val``
    (root/imagenet_vid_val.json) for the BUV folder as CVA-Net releases it, frames under
    root/rawframes/{benign,malignant}/<video>/. Both categories are class 0, "lesion"."""
    return _register_files(root, "buv", BUV_FILES)


def phantom_root(cfg) -> str:
    """The cache folder of the phantom that ``cfg.DATASETS.PHANTOM`` describes: its name holds
    every generation parameter, so a different parameter set never reuses a stale cache."""
    p = cfg.DATASETS.PHANTOM
    size = p.IMAGE_SIZE if isinstance(p.IMAGE_SIZE, int) else "x".join(str(s) for s in p.IMAGE_SIZE)
    folder = f"phantom_v{p.NUM_VIDEOS}_f{p.FRAMES_PER_VIDEO}_s{size}_seed{p.SEED}_t{p.TEST_FRACTION:g}"
    return os.path.join(cfg.DATASETS.ROOT, folder)


def _is_complete(root: str) -> bool:
    return all(os.path.isfile(os.path.join(root, f)) for f in (PHANTOM_META_FILE,) + tuple(f"{s}.json" for s in SPLITS))


def _phantom_arguments(cfg) -> dict:
    p = cfg.DATASETS.PHANTOM
    size = p.IMAGE_SIZE if isinstance(p.IMAGE_SIZE, int) else tuple(p.IMAGE_SIZE)
    return dict(
        num_videos=p.NUM_VIDEOS,
        frames_per_video=p.FRAMES_PER_VIDEO,
        image_size=size,
        seed=p.SEED,
        test_fraction=p.TEST_FRACTION,
    )


def _stale_reason(root: str, cfg) -> Optional[str]:
    """Why the complete cache at ``root`` does not match what the generator would write now
    (e.g. a newer generator version), or None when it does."""
    from ..phantom.params import PhantomParams

    expected = PhantomParams.from_arguments(**_phantom_arguments(cfg)).to_meta()
    with open(os.path.join(root, PHANTOM_META_FILE)) as f:
        found = json.load(f)
    different = [k for k, v in expected.items() if found.get(k) != v]
    if not different:
        return None
    return ", ".join(f"{k}: cached {found.get(k)!r}, expected {expected[k]!r}" for k in different)


def _generate_into(root: str, cfg) -> None:
    """Generate into a temporary sibling folder, then rename it to ``root``: an interrupted
    generation leaves only a ``*.tmp-<pid>`` folder, never a half-written cache. A stale cache
    at ``root`` is replaced only once the new one is complete."""
    from ..phantom import generate_phantom_dataset  # the generator is heavy; import on demand

    tmp, stale = f"{root}.tmp-{os.getpid()}", f"{root}.stale-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info(f"Generating the phantom dataset into {root} (cached for later runs)")
    generate_phantom_dataset(tmp, progress=comm.is_main_process(), **_phantom_arguments(cfg))
    if os.path.isdir(root):
        os.rename(root, stale)
    try:
        os.rename(tmp, root)
    except OSError:
        # Another process (e.g. a second machine on a shared disk) finished first.
        if not _is_complete(root):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def prepare_phantom(cfg) -> str:
    """Return the phantom folder for ``cfg``, generating it first if it is not cached yet (or if
    the cache was written by another generator version).

    In a multi-process run, the first process of each machine generates while the others wait.
    """
    root = phantom_root(cfg)
    if comm.get_local_rank() == 0:
        if not _is_complete(root):
            if os.path.isdir(root):
                raise RuntimeError(
                    f"{root} exists but is not a complete phantom dataset (no {PHANTOM_META_FILE} or "
                    "split JSON); delete the folder to regenerate it"
                )
            os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
            _generate_into(root, cfg)
        else:
            reason = _stale_reason(root, cfg)
            if reason:
                logger.warning(f"The phantom cache {root} is stale ({reason}); regenerating it")
                _generate_into(root, cfg)
    comm.synchronize()
    return root


def register_builtin_datasets(cfg) -> None:
    """Register the phantom named by cfg (``phantom_trainval`` / ``phantom_test``; generated when
    DATASETS.TRAIN or DATASETS.TEST uses a "phantom" name), CVA-BUS at DATASETS.ROOT/cva_bus and
    BUV at DATASETS.ROOT/buv. Safe to call repeatedly; nothing is read until a name is used."""
    names = list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)
    if any(name.startswith("phantom") for name in names):
        register_phantom(prepare_phantom(cfg))
    else:
        register_phantom(phantom_root(cfg))
    register_cva_bus(os.path.join(cfg.DATASETS.ROOT, "cva_bus"))
    register_buv(os.path.join(cfg.DATASETS.ROOT, "buv"))


def load_ground_truth(
    cfg, dataset_name: str = "", dataset_json: str = "", image_root: str = ""
) -> Tuple[str, List[dict]]:
    """``(name, video dicts)`` that saved predictions are evaluated or drawn against, for tools
    that work without the model: a COCO-video JSON file (lesions of every category; frame file
    names relative to ``image_root``, default the JSON's folder; named ``dataset_name`` or after
    the file), or a registered dataset name, built-in ones registered from ``cfg`` first (so a
    phantom described by overrides such as DATASETS.PHANTOM.* is the one trained on)."""
    if dataset_json:
        name = dataset_name or os.path.splitext(os.path.basename(dataset_json))[0]
        return name, load_coco_video_json(
            dataset_json, image_root or os.path.dirname(os.path.abspath(dataset_json)), name, class_agnostic=True
        )
    if not dataset_name:
        raise ValueError("Name the ground truth: a registered dataset name or a COCO-video JSON file")
    register_builtin_datasets(cfg)
    return dataset_name, DatasetCatalog.get(dataset_name)


def check_dataset_names(cfg) -> None:
    """Fail now, before any training, when DATASETS.TRAIN / DATASETS.TEST name a dataset that
    is not registered: a misspelt test set would otherwise surface only after the last
    iteration. Call after registering (``register_builtin_datasets`` and your own)."""
    registered = DatasetCatalog.list()
    for key in ("TRAIN", "TEST"):
        for name in cfg.DATASETS[key]:
            if name not in DatasetCatalog:
                close = difflib.get_close_matches(name, registered, n=3)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"DATASETS.{key} names {name!r}, which is not a registered dataset.{hint} Registered: "
                    f"{', '.join(registered) or '(none)'}. Register your own with register_coco_video (see "
                    f"docs/en/getting_started.md) before the trainer is built."
                )
