"""Marker (a run's values that tell its events from any other) and Target (the ground
truth a tracer counts by)."""

from __future__ import annotations

import pytest

from evt.workload.marker import Marker, Target


def test_marker_is_per_run_and_fits_the_kernel_comm():
    a, b = Marker.for_run("run1", "ptrace"), Marker.for_run("run2", "ptrace")
    assert a == Marker.for_run("run1", "ptrace") and a != b
    assert a.dir == f"/tmp/evt-{a.token}" and a.file.startswith(a.dir + "/")
    assert len(a.comm) <= 15 and len(a.child_comm) <= 15 and a.comm != a.child_comm
    assert 20000 <= a.port < 60000
    assert set(a.as_dict()) == {"token", "dir", "file", "exe", "comm", "child_comm", "port"}


def test_a_target_renders_its_filter_for_one_run():
    marker = Marker("0123abcd")
    target = Target(
        "tracepoint:syscalls:sys_enter_openat", 'comm == "{{ marker.comm }}" && e == "{{ event }}"', 1, True
    )
    rendered = target.rendered("ptrace", marker)
    assert rendered.filter == 'comm == "evt-0123abcd" && e == "ptrace"'
    assert (rendered.probe, rendered.per_op, rendered.exact) == (target.probe, 1, True)
    assert target.filter.startswith('comm == "{{')  # the catalog's target is left as it was


def test_a_filter_naming_an_unknown_value_fails_loudly():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        Target("p", "{{ marker.nothing }}", 1, True).rendered("ptrace", Marker("0"))
