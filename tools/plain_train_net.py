#!/usr/bin/env python
"""The Ultrasound VID training as one plain loop: no trainer, no hooks.

    python tools/plain_train_net.py --config-file configs/phantom/ultradet.yaml [KEY VALUE ...]
    (same flags as tools/train_net.py: --resume, --eval-only, --num-gpus ...)

Same model, data loader, optimizer, LR schedule, checkpoints (files, periods, content), writers
and evaluation as tools/train_net.py, and the same ``metrics.json`` keys (total_loss, each loss,
data_time, grad_norm when clipping, time, lr, and the evaluation results as
``lesion_detection/AP50`` ...). Everything the trainer does is spelled out in ``do_train``, so
usvid/app/plain_train.py is the file to copy when you want to change the loop itself.

Left out, compared with tools/train_net.py (they are hooks or trainer features):
* hard-negative mining (DATALOADER.REFRESH_PERIOD is ignored, with a warning);
* AMP (SOLVER.AMP), gradient accumulation (SOLVER.GRAD_ACCUM_STEPS), PreciseBN, BestCheckpointer,
  EarlyStopping, EMA, the profiler;
* lazy metric reduction: losses are reduced across ranks at every iteration;
* SIGTERM handling, and the exact-resume guarantee: the train sampler's position and the RNG
  states are checkpointed (so a resume continues the same clip stream), but the iteration
  timer and smoothing windows restart.
"""

import sys

from usvid.app import invoke_main
from usvid.app.plain_train import main

if __name__ == "__main__":
    sys.exit(invoke_main(main))
