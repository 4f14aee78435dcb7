import json

from usvid.utils.metrics_file import last_iteration_in, rewind_metrics_file


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


def test_last_iteration_skips_cut_and_foreign_lines(tmp_path):
    path = tmp_path / "metrics.json"
    assert last_iteration_in(str(path)) == -1
    path.write_text('{"iteration": 19}\n{"iteration": 39}\nnot json\n{"loss": 1}\n{"iteration": 5}\n{"iter')
    assert last_iteration_in(str(path)) == 39
