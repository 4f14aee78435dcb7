"""EventStorage, HistoryBuffer and the writers, with every writer's output read back."""

import datetime
import json
import logging
import statistics
import subprocess
import sys

import pytest
import torch

from usvid.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    HistoryBuffer,
    JSONWriter,
    TensorboardXWriter,
    active_event_storage,
    get_event_storage,
    has_event_storage,
)


def test_history_buffer_windows_and_global_average_survive_eviction():
    buffer = HistoryBuffer(max_length=3)
    for i, value in enumerate([1.0, 2.0, 10.0, 4.0, 5.0]):
        buffer.update(value, i)
    assert buffer.values() == [(10.0, 2), (4.0, 3), (5.0, 4)]  # oldest two evicted
    assert buffer.latest() == 5.0
    assert buffer.median(3) == 5.0 and buffer.median(2) == 4.5
    assert buffer.avg(2) == 4.5
    assert buffer.global_avg() == pytest.approx(22.0 / 5)  # over all values ever added


def test_count_samples_covers_a_window_of_iterations_not_of_values():
    buffer = HistoryBuffer()
    for it in range(3, 100, 4):  # a metric gathered every 4 iterations
        buffer.update(float(it), it)
    assert buffer.count_samples(20) == 5  # iterations 83..99


def test_storage_scalars_latest_smoothing_and_scopes():
    with EventStorage(start_iter=7) as storage:
        assert get_event_storage() is storage
        for i in range(5):
            storage.iter = 7 + i
            storage.put_scalar("loss", float(i * i))
            storage.put_scalars(lr=0.1 * i, smoothing_hint=False)
        with storage.name_scope("val"), storage.name_scope("bbox"):
            storage.put_scalar("AP", 0.5, smoothing_hint=False)
        assert storage.latest()["loss"] == (16.0, 11)
        assert storage.latest()["val/bbox/AP"] == (0.5, 11)
        smoothed = storage.latest_with_smoothing_hint(window_size=3)
        assert smoothed["loss"] == (statistics.median([4.0, 9.0, 16.0]), 11)
        assert smoothed["lr"] == (pytest.approx(0.4), 11)  # unhinted: the raw latest value
        assert storage.smoothing_hints() == {"loss": True, "lr": False, "val/bbox/AP": False}
        storage.step()
        assert storage.iter == 12
        with pytest.raises(ValueError, match="smoothing_hint"):
            storage.put_scalar("lr", 1.0)
        with pytest.raises(KeyError, match="known"):
            storage.history("nope")
    with pytest.raises(RuntimeError, match="outside of an EventStorage"):
        get_event_storage()


def test_queued_scalars_are_seen_by_every_reader_in_put_order():
    # put_scalar only queues; each reading method must see the queue as if it had been applied.
    with EventStorage(start_iter=0) as storage:
        storage.put_scalar("loss", 3.0)
        storage.put_scalars(cur_iter=5, loss=1.0, data_time=0.5)
        storage.put_scalar("loss", 2.0, cur_iter=6)
        assert storage.history("loss").values() == [(3.0, 0), (1.0, 5), (2.0, 6)]
        storage.put_scalar("time", 0.25)
        assert storage.latest()["time"] == (0.25, 0)
        storage.put_scalar("time", 0.5)
        storage.discard_latest("time")  # a queued value must not come back after the discard
        assert "time" not in storage.latest() and storage.history("time").latest() == 0.5
        saved = storage.state_dict()
        storage.put_scalar("loss", 99.0)
        storage.load_state_dict(saved)  # replaces everything, queued puts included
        assert storage.history("loss").latest() == 2.0
        with pytest.raises(ValueError, match="'data_time'.*smoothing_hint"):
            storage.put_scalars(smoothing_hint=False, data_time=1.0)
        with pytest.raises(TypeError):
            storage.put_scalar("bad", object())  # rejected when put, not when read


def test_a_storage_nobody_reads_stays_bounded(monkeypatch):
    monkeypatch.setattr(EventStorage, "MAX_PENDING", 50)
    with EventStorage() as storage:
        for i in range(1000):
            storage.iter = i
            storage.put_scalars(a=i, b=-i)
            assert len(storage._pending) < 50  # the queue is taken in, not grown
        assert storage.history("a").count_samples(10) == 10


def test_put_image_rejects_bad_layouts_and_ranges():
    with EventStorage() as storage:
        storage.put_image("ok_float", torch.rand(3, 4, 5))
        storage.put_image("ok_uint8", torch.zeros(1, 4, 5, dtype=torch.uint8))
        with pytest.raises(ValueError, match="CHW"):
            storage.put_image("hwc", torch.rand(4, 5, 3))
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            storage.put_image("too_bright", torch.full((3, 2, 2), 2.0))
        assert [name for name, _, _ in storage.images()] == ["ok_float", "ok_uint8"]
        storage.clear_images()
        assert storage.images() == []


def test_json_writer_lines_and_no_duplicates_after_resume(tmp_path):
    path = tmp_path / "metrics.json"
    with EventStorage(0) as storage:
        writer = JSONWriter(str(path), window_size=20)
        for it in range(40):
            storage.iter = it
            storage.put_scalar("loss", float(it))
            if (it + 1) % 20 == 0:
                writer.write()
        storage.put_scalar("val/AP", 0.3, smoothing_hint=False, cur_iter=40)  # e.g. a final evaluation
        writer.write()
        writer.close()
    with EventStorage(30) as storage:  # resumed from an older checkpoint
        writer = JSONWriter(str(path), window_size=20)
        for it in range(30, 50):
            storage.iter = it
            storage.put_scalar("loss", float(it))
            if (it + 1) % 20 == 0 or it == 49:
                writer.write()
        writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [19, 39, 40, 49]
    assert lines[0] == {"iteration": 19, "loss": 9.5}  # median of 0..19
    assert lines[2] == {"iteration": 40, "val/AP": 0.3}
    assert lines[3]["loss"] == statistics.median(range(30, 50))


def test_tensorboard_writer_scalars_images_histograms_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = TensorboardXWriter(str(tmp_path), window_size=1)
    with EventStorage(0) as storage:
        for it in range(3):
            storage.iter = it
            storage.put_scalar("loss", 1.0 / (it + 1))
            writer.write()
        storage.put_image("sample", torch.rand(3, 8, 6))
        storage.put_histogram("weights", torch.arange(100, dtype=torch.float32), bins=10)
        writer.write()
        assert storage.images() == [] and storage.histograms() == []
    writer.close()

    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    image = events.Images("sample")[0]
    assert (image.step, image.width, image.height) == (2, 6, 8)
    histogram = events.Histograms("weights")[0]
    assert histogram.histogram_value.num == 100
    assert histogram.histogram_value.max == 99.0
    assert sum(histogram.histogram_value.bucket) == 100


def test_a_resumed_run_replaces_in_tensorboard_what_the_interrupted_run_wrote_after_its_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    interrupted = TensorboardXWriter(str(tmp_path), window_size=1)
    with EventStorage(0) as storage:
        for it in range(35):
            storage.iter = it
            storage.put_scalar("loss", float(it))
            if it == 24:
                checkpointed = storage.state_dict()
            if (it + 1) % 10 == 0:
                interrupted.write()
        interrupted.write()  # the interrupted run's last flush, at 34
    interrupted.close()
    resumed = TensorboardXWriter(str(tmp_path), window_size=1)
    resumed.resume_after(19)  # the last write of the uninterrupted schedule before 25
    with EventStorage(25) as storage:  # resumed from the checkpoint of iteration 24
        storage.load_state_dict(checkpointed)
        for it in range(25, 40):
            storage.iter = it
            storage.put_scalar("loss", 100.0 + it)
            if (it + 1) % 10 == 0:
                resumed.write()
    resumed.close()

    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    # One value per step: 34 (written after the checkpoint) is hidden, 29 is the resumed run's.
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(9, 9.0), (19, 19.0), (29, 129.0), (39, 139.0)]


def test_tensorboard_events_reach_the_file_at_each_write_even_if_the_process_is_killed(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # The SummaryWriter queues events and writes them from a thread; a process killed right
    # after a write (e.g. after the checkpoint that follows it) must not lose them.
    script = (
        "import os\n"
        "from usvid.utils.events import EventStorage, TensorboardXWriter\n"
        f"writer = TensorboardXWriter({str(tmp_path)!r}, window_size=1)\n"
        "with EventStorage(0) as storage:\n"
        "    for it in range(60):\n"
        "        storage.iter = it\n"
        "        storage.put_scalars(**{f'metric{j}': float(it) for j in range(12)})\n"
        "        if (it + 1) % 20 == 0:\n"
        "            writer.write()\n"
        "    os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    assert len(events.Tags()["scalars"]) == 12
    for tag in events.Tags()["scalars"]:
        assert [e.step for e in events.Scalars(tag)] == [19, 39, 59], tag


def test_common_metric_printer_line(caplog, monkeypatch):
    printer = CommonMetricPrinter(max_iter=100, window_size=20)
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)  # setup_logger() turns it off
    caplog.set_level(logging.INFO, logger=printer.logger.name)
    with EventStorage(0) as storage:
        for it in range(10):
            storage.iter = it
            storage.put_scalars(total_loss=2.0 + it, loss_cls=1.0 + it, time=0.5, data_time=0.01)
            storage.put_scalar("lr", 0.02, smoothing_hint=False)
        printer.write()
        storage.iter = 100
        printer.write()  # after training: no progress line
    lines = [r.getMessage() for r in caplog.records if r.name == printer.logger.name]
    assert len(lines) == 1
    fields = dict(part.split(": ", 1) for part in lines[0].strip().split("  "))
    assert fields["eta"] == str(datetime.timedelta(seconds=int(0.5 * 90)))
    assert fields["iter"] == "9"
    assert float(fields["total_loss"]) == statistics.median(2.0 + i for i in range(10))
    assert float(fields["loss_cls"]) == statistics.median(1.0 + i for i in range(10))
    assert float(fields["time"]) == 0.5 and float(fields["data_time"]) == 0.01
    assert float(fields["lr"]) == 0.02
    assert fields["max_mem"].endswith("M") and int(fields["max_mem"][:-1]) > 0


def test_common_metric_printer_shows_metric_marked_scalars_smoothed_after_the_losses(caplog, monkeypatch):
    printer = CommonMetricPrinter(max_iter=100, window_size=4)
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)
    caplog.set_level(logging.INFO, logger=printer.logger.name)
    with EventStorage(0) as storage:
        for it in range(10):
            storage.iter = it
            storage.put_scalars(total_loss=1.0, **{"[metric]accuracy": it / 10, "fg_ratio": 0.5})
        printer.write()
    (line,) = [r.getMessage() for r in caplog.records if r.name == printer.logger.name]
    names = [part.split(": ", 1)[0] for part in line.strip().split("  ")]
    assert names.index("[metric]accuracy") == names.index("total_loss") + 1
    assert "fg_ratio" not in names  # neither a loss nor marked
    fields = dict(part.split(": ", 1) for part in line.strip().split("  "))
    assert float(fields["[metric]accuracy"]) == statistics.median([0.6, 0.7, 0.8, 0.9])


def test_common_metric_printer_labels_a_stopped_run_with_the_last_step_and_prints_it_once(caplog, monkeypatch):
    printer = CommonMetricPrinter(max_iter=100)
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)
    caplog.set_level(logging.INFO, logger=printer.logger.name)
    with EventStorage(0) as storage:
        for it in range(10):
            storage.iter = it
            storage.put_scalars(total_loss=1.0, time=0.5)
            if it == 9:
                printer.write()  # a scheduled write after iteration 9...
        storage.iter = 10  # ...then training stops there: after_train runs at iteration 10
        storage.put_scalar("val/AP", 0.5, smoothing_hint=False)
        printer.write()
    lines = [r.getMessage() for r in caplog.records if r.name == printer.logger.name]
    assert len(lines) == 1 and "iter: 9 " in lines[0]


def test_active_event_storage_is_the_innermost_open_one_or_none():
    assert active_event_storage() is None
    with EventStorage() as outer:
        assert active_event_storage() is outer
        with EventStorage() as inner:
            assert active_event_storage() is inner
        assert active_event_storage() is outer
    assert active_event_storage() is None


def test_has_event_storage_iteration_and_count_samples_as_detectron2_names_them():
    assert not has_event_storage()
    with EventStorage(5) as storage:
        assert has_event_storage()
        assert storage.iteration == 5
        storage.iteration = 7
        assert storage.iter == 7
        for it in (7, 9, 10, 11):  # a metric written every other iteration, then every one
            storage.iter = it
            storage.put_scalar("loss", float(it))
        assert storage.count_samples("loss", window_size=3) == 3  # 9, 10 and 11 lie within (8, 11]
        assert storage.count_samples("loss") == 4
    assert not has_event_storage()


def test_common_metric_printer_without_max_iter_prints_no_eta(caplog, monkeypatch):
    printer = CommonMetricPrinter()
    monkeypatch.setattr(logging.getLogger("usvid"), "propagate", True)
    caplog.set_level(logging.INFO, logger=printer.logger.name)
    with EventStorage(0) as storage:
        storage.put_scalars(total_loss=1.0, time=0.5)
        printer.write()
    (line,) = [r.getMessage() for r in caplog.records if r.name == printer.logger.name]
    assert line.strip().startswith("iter: 0") and "eta" not in line
