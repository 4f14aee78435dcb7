"""setup_logger: per-rank files, console on rank 0 only, colours on the console only.

Each test uses its own logger name because setup_logger is cached per argument set."""

import logging

from usvid.utils.logger import setup_logger


def _close_handlers(logger):
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_rank0_logs_to_a_plain_file_and_a_coloured_console(tmp_path, capsys):
    logger = setup_logger(str(tmp_path), 0, name="usvid_test_rank0", abbrev_name="t0")
    try:
        logging.getLogger("usvid_test_rank0.engine").info("step done")
        logging.getLogger("usvid_test_rank0.engine").warning("careful")
        console = capsys.readouterr().out
        assert "t0.engine" in console and "step done" in console
        assert "\033[31mWARNING\033[0m" in console
        log_text = (tmp_path / "log.txt").read_text()
        assert "usvid_test_rank0.engine INFO: step done" in log_text
        assert "usvid_test_rank0.engine WARNING: careful" in log_text
        assert "\033[" not in log_text
        assert setup_logger(str(tmp_path), 0, name="usvid_test_rank0", abbrev_name="t0") is logger
        assert len(logger.handlers) == 2  # the cached call added nothing
    finally:
        _close_handlers(logger)


def test_other_ranks_log_only_to_their_own_file(tmp_path, capsys):
    logger = setup_logger(str(tmp_path / "run" / "train.log"), 1, name="usvid_test_rank1")
    try:
        logger.info("hello from rank 1")
        assert capsys.readouterr().out == ""
        assert "hello from rank 1" in (tmp_path / "run" / "train.log.rank1").read_text()
        assert not (tmp_path / "run" / "train.log").exists()
    finally:
        _close_handlers(logger)


def test_the_model_printout_goes_to_the_file_and_one_line_to_the_console(tmp_path, capsys):
    import torch

    from usvid.utils.logger import log_model

    logger = setup_logger(str(tmp_path), 0, name="usvid_test_model", color=False)
    try:
        log_model(
            logging.getLogger("usvid_test_model.train"), torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
        )
        console = capsys.readouterr().out
        log_text = (tmp_path / "log.txt").read_text()
        assert "(0): Linear(in_features=3, out_features=2, bias=True)" in log_text
        assert "Linear(" not in console
        line = "Model: Sequential with 8 parameters (printed in full in log.txt)"
        assert line in console and line in log_text
    finally:
        _close_handlers(logger)
