import json

from usvid.engine.metrics_resume import last_scheduled_write, rewind_metrics_file


def test_last_scheduled_write_follows_the_periodic_firing_rule():
    assert [last_scheduled_write(i, 20) for i in (0, 18, 19, 20, 38, 39, 45)] == [-1, -1, 19, 19, 19, 39, 39]


def test_rewind_keeps_lines_up_to_the_iteration_in_place_and_drops_a_cut_line(tmp_path):
    path = tmp_path / "metrics.json"
    lines = [json.dumps({"iteration": i, "loss": i / 10}) + "\n" for i in (9, 19, 25, 39)]
    path.write_text("".join(lines) + '{"iteration": 40, "lo')  # the last line cut by kill -9
    with open(path, "a") as appender:  # a writer opened before the rewind keeps appending correctly
        assert rewind_metrics_file(str(path), 19) == 3
        appender.write(json.dumps({"iteration": 39}) + "\n")
    assert path.read_text() == lines[0] + lines[1] + '{"iteration": 39}\n'
    assert rewind_metrics_file(str(path), 100) == 0
    assert rewind_metrics_file(str(tmp_path / "absent.json"), 5) == 0


def test_a_complete_json_line_without_its_newline_is_dropped(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 1}\n{"iteration": 2}')
    assert rewind_metrics_file(str(path), 5) == 1
    assert path.read_text() == '{"iteration": 1}\n'
