"""The application's values of keys the engine defines: the Ultrasound VID model and its
grayscale input. The engine's defaults stay model-neutral (usvid/config/defaults.py); these are
what the application trains unless a config file says otherwise."""

from ..config import CfgNode as CN


def set_engine_key_values(cfg: CN) -> None:
    """Set the application's values of the engine's model and input keys in ``cfg`` in place."""
    cfg.MODEL.META_ARCHITECTURE = "UltraDet"
    # Ultrasound frames are grayscale: one channel, centred on mid-grey, about unit spread.
    cfg.INPUT.FORMAT = "L"
    cfg.MODEL.PIXEL_MEAN = [127.5]
    cfg.MODEL.PIXEL_STD = [64.0]
