"""The training flow of tools/train_net.py: train with periodic evaluation, checkpoints and
hard-negative mining, or with ``--eval-only`` load the weights and evaluate every dataset of
DATASETS.TEST."""

from .setup import setup
from .trainer import Trainer


def main(args):
    """Run the flow for parsed standard arguments (``default_argument_parser``); returns the
    evaluation results."""
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        Trainer.load_trained_weights(cfg, model, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()
