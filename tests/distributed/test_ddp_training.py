import json

import torch

DDP_SCRIPT = """
import os
from toy_training import ToyTrainer, toy_cfg
from usvid.engine import launch
from usvid.utils import comm
from ddp_overrides import OVERRIDES

def main(output_dir):
    trainer = ToyTrainer(toy_cfg(output_dir, *OVERRIDES))
    trainer.resume_or_load(resume=False)
    trainer.train()

if __name__ == "__main__":
    launch(main, 2, dist_url="auto", args=(os.path.join(os.getcwd(), "ddp"),))
"""

# Dropout off: each rank draws its own dropout masks, so only a deterministic model can match.
OVERRIDES = ["TOY.DROPOUT", 0.0, "SOLVER.MAX_ITER", 8, "TEST.EVAL_PERIOD", 0, "DATASETS.TEST", "()"]


def _last_metrics(output_dir):
    return json.loads((output_dir / "metrics.json").read_text().splitlines()[-1])


def test_two_process_ddp_training_equals_one_process_on_the_same_global_batch(run_script, tmp_path):
    from toy_training import ToyTrainer, toy_cfg

    (tmp_path / "ddp_overrides.py").write_text(f"OVERRIDES = {OVERRIDES!r}\n")
    result, _ = run_script(DDP_SCRIPT)
    assert result.returncode == 0, result.stderr

    single = ToyTrainer(toy_cfg(tmp_path / "single", *OVERRIDES))
    single.train()

    ddp_checkpoint = torch.load(tmp_path / "ddp" / "model_final.pth", weights_only=False)
    assert len(ddp_checkpoint["rng_states"]) == 2  # gathered from both ranks
    assert (
        ddp_checkpoint["train_sampler"]["global_position"]
        == 8 * 8
        == single.data_loader.sampler.state_dict()["global_position"]
    )
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp_checkpoint["model"][name], value, rtol=0, atol=1e-6)
    assert single.model.net[0].weight.grad is not None  # it really trained
    ddp_metrics, single_metrics = _last_metrics(tmp_path / "ddp"), _last_metrics(tmp_path / "single")
    assert ddp_metrics["iteration"] == single_metrics["iteration"] == 7
    for key in ("total_loss", "loss_mse", "loss_l1", "lr"):
        assert abs(ddp_metrics[key] - single_metrics[key]) <= 1e-5 * max(1.0, abs(single_metrics[key])), key
