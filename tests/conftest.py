"""Suite-wide settings: pytest-xdist runs two workers on the 2-core CI machine, so each worker
uses one intra-op thread to avoid oversubscription (which makes timings and runs erratic).
OMP_NUM_THREADS says so too, so that default_setup's thread budget keeps the one thread in tests
that set up a run in this process."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def thread_budget_sandbox(monkeypatch, tmp_path):
    """For tests of usvid.utils.cpu_budget: start without a budget and with OMP_NUM_THREADS
    unset; torch's thread count and the budget (both process-wide) are put back afterwards.
    The CPU load counters are those of an empty /proc, so that streaming keeps the budget's count
    whatever else runs on the machine; a test of the adaptive count writes counters there
    (cpu_load.PROC_ROOT)."""
    from usvid.utils import cpu_budget, cpu_load

    threads = torch.get_num_threads()
    monkeypatch.setattr(cpu_budget, "_current", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_load, "PROC_ROOT", str(tmp_path / "proc"))
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def frame_counter():
    """The evaluator class for tests about the evaluation plumbing rather than the metrics: it
    counts the frames it is shown and reports them with the streaming speed handed to it, as
    ``{"frame_count": {"frames": n, "FPS": fps}}``. A class, so that a test can build several."""
    from usvid.evaluation import DatasetEvaluator

    class FrameCounter(DatasetEvaluator):
        def reset(self):
            self.frames = 0

        def process(self, inputs, outputs):
            self.frames += len(inputs)

        def evaluate(self):
            return {"frame_count": {"frames": self.frames, "FPS": self.inference_fps}}

    return FrameCounter
