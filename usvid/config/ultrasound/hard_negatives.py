"""Config keys of hard-negative mining (usvid/app/hard_negatives/), declared together."""

from ..config import CfgNode as CN


def add_hard_negative_config(cfg: CN) -> None:
    """Add the hard-negative mining keys to ``cfg`` in place (after the data keys, which create
    INPUT.TRAIN_FRAME_SAMPLER)."""
    # Hard-negative mining: every REFRESH_PERIOD iterations (0 = never) the current model runs
    # over the training videos, the frames with false-positive sequences are written to a JSON
    # file in the output folder, and the train loader is rebuilt to sample them more often.
    cfg.DATALOADER.REFRESH_PERIOD = 0
    # Mining keeps the boxes scoring above the threshold at which the model reaches this recall
    # on the training videos (the operating point of FP80 for 0.8), then finds their
    # false-positive sequences exactly as the FP metric does.
    cfg.DATALOADER.FP_MINING_RECALL = 0.8
    # True: each lesion video gets its own score threshold (its own recall FP_MINING_RECALL), so
    # videos the model is unsure about everywhere still yield hard negatives; lesion-free videos
    # and videos that never reach the recall use the pooled threshold. False: one pooled
    # threshold over all training videos, as the FP metric uses.
    cfg.DATASETS.SAMPLE_FP_BY_VIDEO = False
    # Mined false-positive JSON file, or a folder of them (the last file in name order is used);
    # "" = none. Format: see usvid/app/hard_negatives/mined_file.py.
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_JSON_DIR = ""
    # Weight of a window centred on a mined false-positive frame relative to an ordinary window.
    cfg.INPUT.TRAIN_FRAME_SAMPLER.FP_SAMPLE_RATE = 5.0
