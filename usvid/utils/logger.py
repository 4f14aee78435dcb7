"""Logging setup for training processes: one log file per rank, a coloured console on rank 0.

Only rank 0 prints to the console so a multi-process run shows each message once; every rank
writes its own file (``log.txt``, ``log.txt.rank1``, ...) so a failure on any rank can be read.
"""

import functools
import logging
import os
import sys
from typing import IO, Optional

__all__ = ["FILE_ONLY", "log_model", "setup_logger"]

# ``logger.info(..., extra=FILE_ONLY)``: the record goes to the log files, not the console (e.g. a
# model printout of hundreds of lines, which would push everything else off the terminal).
FILE_ONLY = {"usvid_file_only": True}

_PLAIN_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"
_GREEN, _RED, _RED_UNDERLINED, _RESET = "\033[32m", "\033[31m", "\033[31;4m", "\033[0m"


class _ColorfulFormatter(logging.Formatter):
    """Green time/name prefix; WARNING in red and ERROR/CRITICAL underlined so they stand out.

    Logger names under the root package are shortened to ``abbrev_name`` to keep lines short."""

    def __init__(self, root_name: str, abbrev_name: str):
        super().__init__(f"{_GREEN}[%(asctime)s %(name)s]:{_RESET} %(message)s", datefmt=_DATE_FORMAT)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # A copy: the record is shared with the other handlers (the plain log file).
        shortened = logging.makeLogRecord(
            dict(record.__dict__, name=record.name.replace(self._root_name, self._abbrev_name))
        )
        message = super().formatMessage(shortened)
        if record.levelno == logging.WARNING:
            return f"{_RED}WARNING{_RESET} {message}"
        if record.levelno >= logging.ERROR:
            return f"{_RED_UNDERLINED}ERROR{_RESET} {message}"
        return message


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "usvid_file_only", False)


def log_model(logger: logging.Logger, model) -> None:
    """The model's full printout to the log files and one line about it to the console."""
    parameters = sum(p.numel() for p in model.parameters())
    logger.info("Model:\n%s", model, extra=FILE_ONLY)
    logger.info(f"Model: {type(model).__name__} with {parameters:,} parameters (printed in full in log.txt)")


@functools.cache
def _cached_log_stream(filename: str) -> IO[str]:
    """One append-mode stream per file, shared by every logger that writes to it."""
    return open(filename, "a", encoding="utf-8", buffering=1)


@functools.cache  # calling it twice with the same arguments must not add handlers twice
def setup_logger(
    output: Optional[str] = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "usvid",
    abbrev_name: Optional[str] = None,
    enable_propagation: bool = False,
) -> logging.Logger:
    """Configure and return the logger ``name``.

    Args:
        output: a ``.txt``/``.log`` file path, or a folder (then ``<output>/log.txt``); rank r > 0
            writes ``<file>.rank{r}``. None: no file.
        distributed_rank: only rank 0 logs to stdout.
        color: colour the console output (files are always plain).
        abbrev_name: how the console shows ``name`` as a prefix of child loggers.
        enable_propagation: also pass records to the root logger (off by default so that a
            configured root logger does not print every line a second time).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = enable_propagation
    plain_formatter = logging.Formatter(_PLAIN_FORMAT, datefmt=_DATE_FORMAT)

    if distributed_rank == 0:
        console = logging.StreamHandler(stream=sys.stdout)
        console.setLevel(logging.DEBUG)
        console.addFilter(_not_file_only)
        console.setFormatter(
            _ColorfulFormatter(name, name if abbrev_name is None else abbrev_name) if color else plain_formatter
        )
        logger.addHandler(console)

    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        file_handler = logging.StreamHandler(_cached_log_stream(filename))
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(plain_formatter)
        logger.addHandler(file_handler)
    return logger
