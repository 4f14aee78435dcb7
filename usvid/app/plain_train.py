"""The Ultrasound VID training as one plain loop, no trainer, no hooks: the flow of
tools/plain_train_net.py, whose docstring lists what it leaves out compared with
:class:`usvid.app.Trainer` (hard-negative mining, AMP, EMA, ... : hooks and trainer features).

Same model, data loader, optimizer, LR schedule, checkpoints, writers, evaluation and
``metrics.json`` keys as the trainer. Everything the trainer does is spelled out in ``do_train``,
so this is the file to copy when you want to change the loop itself.
"""

import logging
import math
import time

import torch
from torch.nn.parallel import DistributedDataParallel

from usvid.checkpoint import Checkpointer, PeriodicCheckpointer
from usvid.data import build_video_detection_train_loader
from usvid.engine import archive_previous_run, default_writers
from usvid.engine.hooks import flatten_results_dict
from usvid.modeling import build_model
from usvid.solver import build_lr_scheduler, build_optimizer, get_clip_grad_norm
from usvid.utils import comm
from usvid.utils.events import EventStorage
from usvid.utils.logger import log_model
from usvid.utils.periodic import last_scheduled_firing

from .setup import setup
from .trainer import Trainer

# Named after the tool whose log these lines have always been in (tools/plain_train_net.py).
logger = logging.getLogger(__name__)
WRITE_PERIOD = 20


def do_test(cfg, model):
    """Evaluate on DATASETS.TEST (streaming inference, files under OUTPUT_DIR/inference/)."""
    return Trainer.test(cfg, model)


def reduced_losses(loss_dict):
    """Mean over ranks of every loss, as Python floats (one all_reduce on a stacked tensor)."""
    names = list(loss_dict)
    stacked = torch.stack([loss_dict[name].detach().float().reshape(()) for name in names])
    if comm.get_world_size() > 1:
        torch.distributed.all_reduce(stacked)
        stacked /= comm.get_world_size()
    return dict(zip(names, stacked.tolist()))


def do_train(cfg, model, resume=False):
    """Train ``model`` for SOLVER.MAX_ITER iterations (from the last checkpoint with ``resume``),
    evaluating every TEST.EVAL_PERIOD and at the end; returns the last evaluation's results."""
    if cfg.DATALOADER.REFRESH_PERIOD > 0:
        logger.warning("plain_train_net does not mine hard negatives: DATALOADER.REFRESH_PERIOD is ignored")
    model.train()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    clip_grad_norm = get_clip_grad_norm(cfg)
    data_loader = build_video_detection_train_loader(cfg)
    checkpointer = Checkpointer(
        model, cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=scheduler, sampler=data_loader.sampler
    )
    start_iter = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume).get("iteration", -1) + 1
    max_iter = cfg.SOLVER.MAX_ITER
    periodic_checkpointer = PeriodicCheckpointer(
        checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, max_iter=max_iter, max_to_keep=cfg.SOLVER.MAX_TO_KEEP
    )
    writers = default_writers(cfg.OUTPUT_DIR, max_iter) if comm.is_main_process() else []
    if start_iter > 0:  # the resumed run writes again what came after the last scheduled write
        for writer in writers:
            writer.resume_after(last_scheduled_firing(start_iter - 1, WRITE_PERIOD))
    elif comm.is_main_process():
        archive_previous_run(cfg.OUTPUT_DIR)
    if comm.get_world_size() > 1:
        model = DistributedDataParallel(model, broadcast_buffers=False)

    logger.info(f"Starting training from iteration {start_iter}")
    data_iter = iter(data_loader)
    results = {}
    with EventStorage(start_iter) as storage:
        for iteration in range(start_iter, max_iter):
            storage.iter = iteration
            step_start = time.perf_counter()
            data = next(data_iter)
            data_time = time.perf_counter() - step_start

            loss_dict = model(data)
            losses = sum(loss_dict.values())
            optimizer.zero_grad()
            losses.backward()
            grad_norm = None
            if clip_grad_norm is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm).item()
            optimizer.step()

            metrics = reduced_losses(loss_dict)
            total_loss = sum(metrics.values())
            if not math.isfinite(total_loss):
                raise FloatingPointError(f"Loss became infinite or NaN at iteration={iteration}: {metrics}")
            storage.put_scalar("total_loss", total_loss)
            storage.put_scalars(data_time=data_time, **metrics)
            if grad_norm is not None:
                storage.put_scalar("grad_norm", grad_norm)
            storage.put_scalar("lr", optimizer.param_groups[0]["lr"], smoothing_hint=False)
            scheduler.step()
            if iteration - start_iter >= 3:  # like IterationTimer: skip the warm-up steps
                storage.put_scalar("time", time.perf_counter() - step_start)

            eval_period = cfg.TEST.EVAL_PERIOD
            is_last = iteration == max_iter - 1
            if (eval_period > 0 and (iteration + 1) % eval_period == 0) or is_last:
                results = do_test(cfg, model)
                if comm.is_main_process() and results:
                    storage.put_scalars(smoothing_hint=False, **flatten_results_dict(results))
                model.train()
                comm.synchronize()
            # Write before saving (as the trainer's hooks do): a kill between the two then
            # resumes from the previous checkpoint and loses no line.
            if (iteration + 1) % WRITE_PERIOD == 0 or is_last:
                for writer in writers:
                    writer.write()
            periodic_checkpointer.step(iteration)
    for writer in writers:
        writer.close()
    return results


def main(args):
    """The flow of tools/plain_train_net.py for parsed standard arguments (``--eval-only``
    evaluates the trained weights instead of training)."""
    cfg = setup(args)
    model = build_model(cfg)
    log_model(logger, model)
    if args.eval_only:
        Trainer.load_trained_weights(cfg, model, resume=args.resume)
        return do_test(cfg, model)
    return do_train(cfg, model, resume=args.resume)
