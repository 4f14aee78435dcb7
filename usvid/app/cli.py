"""Command-line plumbing shared by the tools: errors in the user's input end the process with
one line and exit code 2, and ``invoke_main`` runs a ``main(args)`` on every process that
``--num-gpus`` / ``--num-machines`` ask for."""

import os
import sys

from usvid.checkpoint import CheckpointLoadError
from usvid.config import ConfigError
from usvid.data import DatasetFormatError
from usvid.engine import default_argument_parser, launch

from .train import main as train_main

# Errors in what the user gave (a config, a dataset file, a checkpoint): their message says what
# is wrong and where, and a traceback through usvid's internals would only bury it.
USER_INPUT_ERRORS = (ConfigError, DatasetFormatError, CheckpointLoadError, FileNotFoundError)


def run_cli(func, *args, **kwargs):
    """``func(*args, **kwargs)`` for a command-line tool: an error in the user's input ends the
    process with its message and exit code 2 (the traceback too with USVID_DEBUG=1)."""
    try:
        return func(*args, **kwargs)
    except USER_INPUT_ERRORS as error:
        if os.environ.get("USVID_DEBUG"):
            raise
        print(f"error: {error}\n(set USVID_DEBUG=1 to see where it was raised)", file=sys.stderr)
        sys.exit(2)


def invoke_main(main_func=None):
    """Parse the standard arguments and run ``main_func(args)`` (default: the training flow of
    tools/train_net.py, :func:`usvid.app.train.main`) on every process ``--num-gpus`` /
    ``--num-machines`` ask for; tools built on this flow (plain_train_net.py, your own scripts)
    pass their own ``main``."""
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    run_cli(
        launch,
        main_func or train_main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
