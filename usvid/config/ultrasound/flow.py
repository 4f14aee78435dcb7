"""Config keys of the Ultrasound VID training flow (tools/train_net.py): output folders and
hard-negative mining (usvid/evaluation/hard_negatives.py)."""

from ..config import CfgNode as CN


def add_training_flow_config(cfg: CN) -> None:
    """Add the training-flow keys to ``cfg`` in place."""
    # When True, OUTPUT_DIR becomes OUTPUT_DIR/<config path below configs/ without .yaml> (with
    # OUTPUT_DIR ./output: configs/phantom/ultradet.yaml -> output/phantom/ultradet), so runs
    # never collide.
    cfg.AUTO_DIR = False
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
