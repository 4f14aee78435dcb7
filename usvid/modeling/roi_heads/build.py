"""RoI-head registry: ``MODEL.ROI_HEADS.NAME`` names UltraDet's temporal head, so a researcher
swaps the temporal module by config."""

from usvid.utils.registry import Registry

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = """Temporal RoI heads, built as ``cls.from_config(cfg, in_channels,
stride, res5_blocks)``. A head owns its streaming state and offers what TemporalRoIHead does:
``reset()``, ``forward_clip(feature_maps, boxes, frame_spacing)`` (a whole clip),
``forward_frame(feature_map, boxes)`` (the next streamed frame; buffers it), ``add_ground_truth``
and ``losses`` (training), ``inference`` (final boxes of one frame), ``check_clip_length``,
``iou_threshold`` and ``context_frame_step`` (video frames between two context frames)."""


def build_roi_heads(cfg, in_channels: int, stride: int, res5_blocks: int):
    """Build the head named by ``cfg.MODEL.ROI_HEADS.NAME`` on a stride-``stride`` RoI feature
    map of ``in_channels`` channels (``res5_blocks``: the backbone's res5 depth it continues)."""
    return ROI_HEADS_REGISTRY.get(cfg.MODEL.ROI_HEADS.NAME).from_config(cfg, in_channels, stride, res5_blocks)
