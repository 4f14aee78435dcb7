"""The engine's default config tree: keys every model and dataset shares (detectron2 names).

Application keys (frame samplers, UltraDet heads, hard-negative mining, ...) are added by
``usvid.config.add_ultrasound_config``, which also sets the application's values of the keys
below that describe a model and its input (the model's name, grayscale frames and their
normalisation); here they keep detectron2's neutral values (no model; BGR input normalised with
the ImageNet means). The comment above a key is its documentation (docs/*/configs.md is
generated from it).
"""

from .config import CfgNode as CN

_C = CN()
# Version of the config layout (for future key renames).
_C.VERSION = 1

_C.MODEL = CN()
# Name of the model class in the META_ARCH registry.
_C.MODEL.META_ARCHITECTURE = ""
# "auto": CUDA when present, else CPU.
_C.MODEL.DEVICE = "auto"
# Checkpoint or state-dict file to initialise the model from ("" = random initialisation).
_C.MODEL.WEIGHTS = ""
# One value per input channel: 1 entry for grayscale ultrasound, 3 for RGB/BGR input.
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
# Per-channel divisor applied after subtracting PIXEL_MEAN.
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]
# Keep the weights (and so the convolutions' outputs) in channels-last memory order: the same
# function, faster convolutions on CPUs with oneDNN (benchmarks/RESULTS.md, "Training steps").
_C.MODEL.CHANNELS_LAST = False

# Exponential moving average of the weights (the EMA hook): evaluation uses the averaged
# weights, and checkpoints carry them.
_C.MODEL_EMA = CN()
# Keep the average and evaluate with it.
_C.MODEL_EMA.ENABLED = False
# Per-step decay: ema = DECAY * ema + (1 - DECAY) * weight.
_C.MODEL_EMA.DECAY = 0.999

_C.INPUT = CN()
# "L" keeps grayscale frames as 1 channel; "RGB" / "BGR" give 3 channels.
_C.INPUT.FORMAT = "BGR"

_C.DATASETS = CN()
# Names of registered datasets to train on.
_C.DATASETS.TRAIN = ()
# Names of registered datasets to evaluate on.
_C.DATASETS.TEST = ()

_C.DATALOADER = CN()
# Data-loading worker processes per rank (0 loads in the training process).
_C.DATALOADER.NUM_WORKERS = 2

_C.SOLVER = CN()
# "SGD" (with MOMENTUM, NESTEROV) or "AdamW" (with ADAM_BETA).
_C.SOLVER.OPTIMIZER = "SGD"
# "WarmupMultiStepLR" (decay by GAMMA at STEPS), "WarmupCosineLR" (cosine to BASE_LR_END at
# MAX_ITER) or "WarmupStepWithFixedGammaLR" (decay by GAMMA NUM_DECAYS times, evenly spaced).
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
# Number of training iterations.
_C.SOLVER.MAX_ITER = 40000
# Learning rate after warm-up, before decay.
_C.SOLVER.BASE_LR = 0.001
# Learning rate at MAX_ITER of WarmupCosineLR (between 0 and BASE_LR).
_C.SOLVER.BASE_LR_END = 0.0
# SGD momentum.
_C.SOLVER.MOMENTUM = 0.9
# Use Nesterov momentum with SGD.
_C.SOLVER.NESTEROV = False
# AdamW (beta1, beta2).
_C.SOLVER.ADAM_BETA = (0.9, 0.999)
# Weight decay of ordinary parameters.
_C.SOLVER.WEIGHT_DECAY = 0.0001
# Weight decay of normalisation-layer parameters (BatchNorm, GroupNorm, LayerNorm, ...).
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
# Weight decay of biases (None: same as WEIGHT_DECAY).
_C.SOLVER.WEIGHT_DECAY_BIAS = None
# Biases train with BASE_LR * BIAS_LR_FACTOR.
_C.SOLVER.BIAS_LR_FACTOR = 1.0
# Name-based learning-rate multipliers: [(substring, factor), ...]; a parameter whose name
# contains the substring trains with its LR times factor (e.g. [["backbone", 0.1]]).
_C.SOLVER.LR_MULTIPLIERS = []
# LR decay factor applied at each of STEPS (WarmupMultiStepLR).
_C.SOLVER.GAMMA = 0.1
# Iterations at which the LR is multiplied by GAMMA (WarmupMultiStepLR).
_C.SOLVER.STEPS = (30000,)
# Number of LR decays by GAMMA of WarmupStepWithFixedGammaLR, at 1/(NUM_DECAYS+1), 2/(NUM_DECAYS+1)
# ... of MAX_ITER.
_C.SOLVER.NUM_DECAYS = 3
# LR factor at iteration 0 of the warm-up.
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
# Length of the warm-up in iterations (0 = none).
_C.SOLVER.WARMUP_ITERS = 1000
# "linear" (ramp from WARMUP_FACTOR to 1) or "constant" (WARMUP_FACTOR throughout the warm-up).
_C.SOLVER.WARMUP_METHOD = "linear"
# Save a checkpoint every CHECKPOINT_PERIOD iterations.
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Keep at most this many periodic checkpoints (None keeps all).
_C.SOLVER.MAX_TO_KEEP = None
# Number of images per batch across all ranks (image models); video models use SEGS_PER_BATCH.
_C.SOLVER.IMS_PER_BATCH = 16
# World size the batch size and LR were tuned for; with > 0, auto_scale_workers rescales
# batch size, LR and schedule linearly for the actual world size.
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
# Micro-batches accumulated into one optimizer step (one trainer iteration).
_C.SOLVER.GRAD_ACCUM_STEPS = 1
# Gradient clipping.
_C.SOLVER.CLIP_GRADIENTS = CN()
# Clip gradients before each optimizer step.
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
# "norm": clip the global norm of all gradients to CLIP_VALUE; "value": clamp each element.
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
# Maximum gradient norm ("norm") or absolute element value ("value").
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
# Order of the norm for "norm" clipping (inf for the max norm).
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Automatic mixed precision.
_C.SOLVER.AMP = CN()
# Train with autocast (AMPTrainer).
_C.SOLVER.AMP.ENABLED = False
# "float16" (with a grad scaler, CUDA), "bfloat16" (also on CPU), or "auto": bfloat16 where the
# device computes it natively (CPUs with AVX512-BF16 or AMX, GPUs from Ampere on) and float32
# elsewhere, where bfloat16 would train slower (the log says which and why).
_C.SOLVER.AMP.PRECISION = "float16"

_C.TEST = CN()
# Evaluate every EVAL_PERIOD iterations (0 disables periodic evaluation).
_C.TEST.EVAL_PERIOD = 0
# Expected evaluation results [[task, metric, value, tolerance], ...] that DefaultTrainer.train()
# verifies after training (empty: no check).
_C.TEST.EXPECTED_RESULTS = []
# Recompute BatchNorm statistics before each evaluation.
_C.TEST.PRECISE_BN = CN()
# Enable PreciseBN (only has an effect on models with BatchNorm layers).
_C.TEST.PRECISE_BN.ENABLED = False
# Batches used to recompute the statistics.
_C.TEST.PRECISE_BN.NUM_ITER = 200

# Folder for checkpoints, logs, metrics and the merged config.
_C.OUTPUT_DIR = "./output"
# A negative seed draws a random one (logged, so the run can be repeated).
_C.SEED = -1
# Let cuDNN pick the fastest convolution algorithms (non-deterministic).
_C.CUDNN_BENCHMARK = False
# Use only deterministic kernels (torch.use_deterministic_algorithms): a run, and a resumed run, then
# repeat bitwise with several CPU threads or on a GPU. None (the default): on when training on the
# CPU, where it costs about 0.5 % per iteration (the phantom UltraDet on 2 threads), off on CUDA.
# True / False force it on / off.
_C.DETERMINISTIC = None
# Compute (intra-op) threads of each process on the CPU; 0 = automatic: the usable cores (CPU
# affinity mask and cgroup quota) shared among this machine's processes, less room for the loader
# workers on 4 or more cores; streaming inference uses one core fewer while other programs keep a
# core of the process's CPUs busy (measured as it streams; at all times under a binding cgroup
# quota). When 0, the environment's OMP_NUM_THREADS applies if set. A set count holds for training
# and streaming alike. The log says what was chosen and why.
_C.CPU_THREADS = 0
