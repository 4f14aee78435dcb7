"""Hard-negative mining: find the training frames where the current model raises false alarms,
and make the train loader show them more often.

False positives in ultrasound come from a few structures (fat lobules, vessels, acoustic shadows)
that look like a lesion in some frames. Every part of the feature lives in this package:

* mining.py: run the model over the training videos with the evaluation's streaming inference,
  keep the boxes above the operating threshold (the score at which the model reaches
  DATALOADER.FP_MINING_RECALL, FP80's threshold for 0.8) and find their false-positive sequences
  exactly as the FP metric does (``VideoDetectionEvaluation.fp_sequence_frames``);
* mined_file.py: the JSON file of mined frames, written by the miner and read by the sampler;
* sampler.py: ``HardNegativeFrameSampler`` (INPUT.TRAIN_FRAME_SAMPLER.NAME), which centres
  training windows on the mined frames FP_SAMPLE_RATE times as often; importing this package
  registers it among the frame samplers of ``usvid.data``;
* hook.py: ``RefreshDataloaderHook``, which mines every DATALOADER.REFRESH_PERIOD iterations and
  rebuilds the train loader on the new file (``Trainer`` adds it when the period is > 0).

Its config keys are declared together in usvid/config/ultrasound/hard_negatives.py.
"""

from .hook import RefreshDataloaderHook, hard_negative_config
from .mined_file import HardNegativeFrames, load_hard_negative_frames, write_hard_negative_json
from .mining import mine_false_positive_frames, mine_hard_negatives
from .sampler import HardNegativeFrameSampler

__all__ = [
    "HardNegativeFrameSampler",
    "HardNegativeFrames",
    "RefreshDataloaderHook",
    "hard_negative_config",
    "load_hard_negative_frames",
    "mine_false_positive_frames",
    "mine_hard_negatives",
    "write_hard_negative_json",
]
