"""Config keys of the data area of the Ultrasound VID application.

The defaults are sized for the CPU phantom demo (256x256 grayscale frames, short clips, a couple
of clips per iteration); the paper-sized configs override them.
"""

from ..config import CfgNode as CN


def add_data_config(cfg: CN) -> None:
    """Add the data keys to ``cfg`` in place."""
    # Folder that holds datasets: the cached phantoms (one sub-folder per parameter set, see
    # usvid.data.datasets.builtin.prepare_phantom) and the public data (e.g. ROOT/cva_bus).
    cfg.DATASETS.ROOT = "datasets"
    # Parameters of the built-in synthetic phantom named by "phantom_trainval" / "phantom_test";
    # it is generated on first use into DATASETS.ROOT/phantom_v{N}_f{F}_s{SIZE}_seed{SEED}_t{TEST_FRACTION}.
    cfg.DATASETS.PHANTOM = CN()
    # Number of videos (train + test).
    cfg.DATASETS.PHANTOM.NUM_VIDEOS = 60
    # Frames per video (30 fps).
    cfg.DATASETS.PHANTOM.FRAMES_PER_VIDEO = 80
    # Frame side in pixels (square frames).
    cfg.DATASETS.PHANTOM.IMAGE_SIZE = 256
    # Seed of the generator: the same seed gives byte-identical files.
    cfg.DATASETS.PHANTOM.SEED = 0
    # Fraction of the videos that go to phantom_test.
    cfg.DATASETS.PHANTOM.TEST_FRACTION = 0.25

    # Frames are resized to (about) this many pixels, aspect ratio kept, each side rounded to a
    # multiple of INPUT.SIZE_DIVISIBILITY. 256*256 keeps the phantom at its native size.
    cfg.INPUT.FIXED_AREA_TRAIN = 256 * 256
    # Same for evaluation / inference (no random scale).
    cfg.INPUT.FIXED_AREA_TEST = 256 * 256
    # Output sides are multiples of this (the backbone's largest stride); 0 or 1 disables it.
    cfg.INPUT.SIZE_DIVISIBILITY = 32
    # Training scale jitter: a factor drawn uniformly from this (min, max) range multiplies
    # INPUT.FIXED_AREA_TRAIN once per clip; (1.0, 1.0) disables it.
    cfg.INPUT.SCALE_TRAIN = (0.8, 1.25)
    # Probability of flipping a whole training clip horizontally (0 disables).
    cfg.INPUT.RANDOM_FLIP = 0.5
    # Photometric jitter, one draw per clip from each (min, max) range; (1.0, 1.0) disables.
    # Contrast stretches intensities around mid-grey 127.5 by the factor.
    cfg.INPUT.CONTRAST = (0.8, 1.2)
    # Brightness multiplies intensities by the factor.
    cfg.INPUT.BRIGHTNESS = (0.8, 1.2)
    # Gamma: out = 255 * (in / 255) ** gamma (applied first).
    cfg.INPUT.GAMMA = (0.8, 1.25)

    cfg.INPUT.TRAIN_FRAME_SAMPLER = CN()
    # "WindowFrameSampler": a random window of INTERVAL consecutive frames of a random video;
    # "HardNegativeFrameSampler": the same, but windows centred on the mined false-positive
    # frames of FP_JSON_DIR are drawn FP_SAMPLE_RATE times as often as any other window.
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NAME = "WindowFrameSampler"
    # Frames per training clip (sorted, distinct when the window is long enough).
    cfg.INPUT.TRAIN_FRAME_SAMPLER.NUM_OUT_FRAMES = 4
    # Window length in frames (FRAME_STEP apart) from which the clip's frames are drawn.
    cfg.INPUT.TRAIN_FRAME_SAMPLER.INTERVAL = 12
    # Frames between two neighbouring frames of that window (1: consecutive frames). A temporal
    # head trains on clips spaced as its context: it must equal MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP.
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP = 1

    # Clips per training iteration summed over all ranks (must be divisible by the world size).
    cfg.SOLVER.SEGS_PER_BATCH = 2
