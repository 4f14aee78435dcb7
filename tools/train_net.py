#!/usr/bin/env python
"""Ultrasound VID training and evaluation script (detectron2's tools/train_net.py for videos).

    python tools/train_net.py --config-file configs/phantom/ultradet.yaml [KEY VALUE ...]
    python tools/train_net.py --config-file ... --resume          # continue from the last checkpoint
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS path/to/model.pth
    python tools/train_net.py --config-file ... --num-gpus 2      # 2 processes (CPU: gloo)

The flow: ``setup`` builds the config (engine defaults + application keys + the file + command
line overrides; with ``AUTO_DIR`` the output folder is named after the config file), registers
the datasets (generating the phantom on first use), and on the main process backs up the code
and config into ``OUTPUT_DIR/code_<timestamp>`` so every result can be traced to the code that
produced it. ``--eval-only`` loads the weights and evaluates every dataset of DATASETS.TEST;
otherwise :class:`usvid.app.Trainer` trains with periodic evaluation, checkpoints and, when
DATALOADER.REFRESH_PERIOD > 0, hard-negative mining.

The application lives in the package (usvid.app wires usvid.data, usvid.modeling and
usvid.evaluation into the engine); this script only hands the command line to it.
"""

import sys

from usvid.app import invoke_main

if __name__ == "__main__":
    sys.exit(invoke_main())
