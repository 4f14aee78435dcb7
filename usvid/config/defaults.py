"""The engine's default config tree: keys every model and dataset shares (detectron2 names).

Application keys (frame samplers, UltraDet heads, hard-negative mining, ...) are added by
``usvid.config.add_ultrasound_config``.
"""

from .config import CfgNode as CN

_C = CN()
_C.VERSION = 1

_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "UltraDet"
# "auto": CUDA when present, else CPU.
_C.MODEL.DEVICE = "auto"
_C.MODEL.WEIGHTS = ""
# One value per input channel: 1 entry for grayscale ultrasound, 3 for RGB/BGR input.
_C.MODEL.PIXEL_MEAN = [127.5]
_C.MODEL.PIXEL_STD = [64.0]

_C.INPUT = CN()
# "L" keeps grayscale frames as 1 channel; "RGB" / "BGR" give 3 channels.
_C.INPUT.FORMAT = "L"

_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2

_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "SGD"
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.CHECKPOINT_PERIOD = 5000
_C.SOLVER.MAX_TO_KEEP = None
# Number of images per batch across all ranks (image models); video models use SEGS_PER_BATCH.
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
_C.SOLVER.AMP = CN({"ENABLED": False})
_C.SOLVER.AMP.PRECISION = "float16"

_C.TEST = CN()
# Evaluate every EVAL_PERIOD iterations (0 disables periodic evaluation).
_C.TEST.EVAL_PERIOD = 0
_C.TEST.PRECISE_BN = CN({"ENABLED": False})
_C.TEST.PRECISE_BN.NUM_ITER = 200

_C.OUTPUT_DIR = "./output"
# A negative seed draws a random one (logged, so the run can be repeated).
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
