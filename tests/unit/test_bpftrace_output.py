"""Reading bpftrace's output (evt/tracers/bpftrace/output.py): the count map, the stream
lines per unit and the lost-event notices in both of bpftrace's formats."""

from __future__ import annotations

from evt.tracers.bpftrace.output import parse


def test_counts_stream_lines_and_lost_notices_in_both_formats(tmp_path):
    out, log = tmp_path / "bpftrace.out", tmp_path / "bpftrace.log"
    out.write_text(
        '{"type": "attached_probes", "data": {"probes": 3}}\n'
        + '{"type": "printf", "data": "evt:a\\n"}\n' * 4
        + '{"type": "lost_events", "data": {"events": 4}}\n'
        + '{"type": "printf", "data": "evt:b\\n"}\n' * 2
        + '{"type": "lost_events", "data": {"events": 4}}\n'  # the same notice twice counts twice
        + '{"type": "printf", "data": "evt:a\\n"}\n'
        + '{"type": "printf", "data": "evt-bpftrace: done\\n"}\n'  # the program's own lines are no events
        + "Lost 3 events\n"
        + '{"type": "map", "data": {"@other": {"x": 9}}}\n'
        + '{"type": "map", "data": {"@evt_events": {"a": 5, "b": 7}}}\n'
        + "not json {\n"
    )
    log.write_text("WARNING: something\nLost 2 events\n")
    output = parse([out, log, tmp_path / "missing"])
    assert output.counts == {"a": 5, "b": 7}
    assert output.printed == {"a": 5, "b": 2}
    assert output.lost_notices == 4 + 4 + 3 + 2


def test_no_map_is_none(tmp_path):
    out = tmp_path / "bpftrace.out"
    out.write_text('{"type": "attached_probes", "data": {"probes": 1}}\n')
    output = parse([out])
    assert output.counts is None and output.printed == {} and output.lost_notices == 0
