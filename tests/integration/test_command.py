"""The YAML-configured command tracer (evt/tracers/command.py) and the two tracers built on
it, tracer=opensnoop and tracer=execsnoop (conf/tracer/): what it refuses before starting,
how it attributes lines to units, and real runs of libbpf-tools' tracers, one driven into
loss."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid

import pytest

from evt.errors import RunError, UsageError
from evt.tracers.command import CommandTracer
from helpers import (
    HostTrigger,
    Noise,
    barrier,
    bpftrace_skip_reason,
    build_tracer,
    compose_cfg,
    make_unit,
    run_containers,
    run_evt,
    trace,
)


def tracer_cfg(name: str = "opensnoop", **changes):
    """The config composed with tracer=<name> (conf/tracer/<name>.yaml), tracer.* keys then replaced."""
    return compose_cfg(f"tracer={name}", **{f"tracer.{key}": value for key, value in changes.items()})


def libbpf_tools_skip_reason(tool: str) -> str | None:
    return bpftrace_skip_reason() or (None if shutil.which(tool) else f"{tool} not installed (make setup)")


needs_opensnoop = pytest.mark.skipif(
    libbpf_tools_skip_reason("opensnoop") is not None, reason=libbpf_tools_skip_reason("opensnoop") or ""
)
needs_execsnoop = pytest.mark.skipif(
    libbpf_tools_skip_reason("execsnoop") is not None, reason=libbpf_tools_skip_reason("execsnoop") or ""
)


# -- bad input: refused by check(), nothing started -----------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"line": None}, "tracer.line of tracer opensnoop is missing (conf/tracer/opensnoop.yaml)"),
        ({"lost": ""}, "tracer.lost of tracer opensnoop is missing"),
        (
            {"line": "^(?P<comm>\\S+"},
            "tracer.line of tracer opensnoop (conf/tracer/opensnoop.yaml) does not compile: "
            "'^(?P<comm>\\\\S+': missing ), unterminated subpattern",
        ),
        (
            {"lost": "^Lost (\\d+)"},
            "tracer.lost of tracer opensnoop (conf/tracer/opensnoop.yaml) has no group named `lost`",
        ),
        (
            {"line": "^(?P<comm>\\S+)"},
            "tracer.line of tracer opensnoop (conf/tracer/opensnoop.yaml) has no group named path",
        ),
        ({"events": []}, "tracer.events of tracer opensnoop (conf/tracer/opensnoop.yaml) is empty"),
        ({"match": {}}, "tracer.match of tracer opensnoop (conf/tracer/opensnoop.yaml) is empty"),
        ({"ready_pattern": None}, "says neither how readiness shows"),
        ({"ready_delay": "1s"}, "has both tracer.ready_pattern and tracer.ready_delay: keep one"),
        (
            {"ready_pattern": "[x"},
            "tracer.ready_pattern of tracer opensnoop (conf/tracer/opensnoop.yaml) does not compile",
        ),
        ({"ready_pattern": None, "ready_delay": "soon"}, "invalid tracer.ready_delay of tracer opensnoop 'soon'"),
        ({"ready_timeout": "soon"}, "invalid tracer.ready_timeout 'soon'"),
        ({"stop_timeout": "soon"}, "invalid tracer.stop_timeout 'soon'"),
        ({"stop_signal": "SIGNOPE"}, "invalid tracer.stop_signal 'SIGNOPE' of tracer opensnoop"),
        (
            {"binary": "evt-test-no-opensnoop"},
            "opensnoop not found: 'evt-test-no-opensnoop' is not an executable on PATH",
        ),
        (
            {"command": ["evt-test-no-stdbuf", "{{ binary }}"]},
            "'evt-test-no-stdbuf', the first word of tracer opensnoop's command, is not an executable on PATH",
        ),
        ({"command": ["{{ binary"]}, "tracer.command item '{{ binary' of tracer opensnoop does not render"),
        ({"command": ["{{ nope }}"]}, "'nope' is undefined"),
        (
            {"match": {"comm": "{{ marker.nope }}"}},
            "tracer.match.comm '{{ marker.nope }}' of tracer opensnoop does not render",
        ),
    ],
)
def test_bad_yaml_is_refused_before_anything_starts(tmp_path, changes, message):
    cfg = tracer_cfg(**changes)
    if "binary" not in changes and not shutil.which("opensnoop"):
        pytest.skip("opensnoop not installed")
    with pytest.raises(UsageError) as err:
        build_tracer(CommandTracer, cfg, tmp_path).check([make_unit()])
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "tracer").exists(), "nothing started"


def test_command_items_render_per_argument_and_empty_ones_are_left_out(tmp_path):
    cfg = tracer_cfg(
        command=[
            "{{ binary }}",
            "{% if units | length > 1 %}--many{% endif %}",
            "--comm={{ units[0].marker.comm }}",
            "{{ run_dir }}",
        ]
    )
    unit = make_unit()
    argv = build_tracer(CommandTracer, cfg, tmp_path).render_command([unit])
    assert argv[1:] == [f"--comm={unit.marker.comm}", str(tmp_path)]


def test_only_native_units_of_its_events_are_counted(tmp_path):
    tracer = build_tracer(CommandTracer, tracer_cfg(), tmp_path)
    units = [make_unit(), make_unit("ptrace"), make_unit(mode="script", name="opens-by-script")]
    assert [u.name for u in tracer.counted(units)] == ["security_file_open"]


def test_lines_are_attributed_by_every_match_group_and_the_event_group(tmp_path):
    """A line counts for a unit only when all its match groups (and its event, when the
    pattern names one) are the unit's; lost messages are summed from stdout and stderr."""
    cfg = tracer_cfg(line=r"^(?P<event>\w+) (?P<comm>\S+) (?P<path>\S+)$", event_names={"openat": "security_file_open"})
    a, b = make_unit(run_id="a", name="a"), make_unit(run_id="b", name="b")
    tracer = build_tracer(CommandTracer, cfg, tmp_path)
    tracer.check([a, b])
    tracer.dir.mkdir()
    lines = (
        [f"openat {a.marker.comm} {a.marker.file}"] * 3
        + [f"openat {b.marker.comm} {b.marker.file}"] * 2
        + [
            f"openat {a.marker.comm} {b.marker.file}",  # a's comm, b's file: nobody's
            f"openat python3 {a.marker.file}",  # host noise on a's file
            f"execve {a.marker.comm} {a.marker.file}",  # another event
            "PID    COMM  FD ERR PATH",
            "Lost 7 events on CPU #1!",
        ]
    )
    tracer.out_path.write_text("\n".join(lines) + "\n")
    tracer.log_path.write_text("Lost 5 events on CPU #0!\n")
    assert tracer.count_lines([a, b]) == ({"a": 3, "b": 2}, len(lines))
    assert tracer.lost_events() == 12


def test_a_tracer_is_one_yaml_file_found_by_hydra(tmp_path):
    """Adding a tracer needs only conf/tracer/<name>.yaml (here on hydra.searchpath): a bad
    one exits 2 with one message and starts no container."""
    (tmp_path / "tracer").mkdir()
    (tmp_path / "tracer" / "mysnoop.yaml").write_text(
        "defaults:\n  - command_tracer_schema\n\nname: mysnoop\nbinary: sh\ncommand: ['{{ binary }}']\n"
        "events: [security_file_open]\nline: '^(?P<comm>\\S+'\nlost: '^Lost (?P<lost>\\d+)'\nready_delay: 1s\n"
    )
    run_id = f"mysnoop-{uuid.uuid4().hex[:8]}"
    proc = run_evt(
        "stress",
        "-e",
        "security_file_open:ops=10",
        "tracer=mysnoop",
        f"run_id={run_id}",
        f"hydra.searchpath=[file://{tmp_path}]",
        f"hydra.run.dir={tmp_path / 'out'}",
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "tracer.line of tracer mysnoop (conf/tracer/mysnoop.yaml) does not compile" in proc.stderr
    assert run_containers(run_id) == []


# -- its lifecycle, with a Python program as the tracer ----------------------------------------

PROGRAM = """
import signal, sys, time
if "ignore-sigint" in sys.argv:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
print("starting", file=sys.stderr, flush=True)
if "fail" in sys.argv:
    print("boom: no probes", file=sys.stderr, flush=True)
    sys.exit(3)
print("ATTACHED", flush=True)
time.sleep(60)
"""


def program_tracer(tmp_path, *args: str, **changes) -> CommandTracer:
    changes = {
        "binary": sys.executable,
        "command": ["{{ binary }}", "-c", PROGRAM, *args],
        "ready_pattern": "^ATTACHED$",
        **changes,
    }
    cfg = tracer_cfg(**changes)
    return build_tracer(CommandTracer, cfg, tmp_path)


@pytest.fixture
def stopped():
    tracers = []
    yield tracers.append
    for tracer in tracers:
        tracer.stop()


def test_ready_when_the_pattern_shows_up_and_a_clean_stop(tmp_path, stopped):
    tracer = program_tracer(tmp_path)
    stopped(tracer)
    units = [make_unit()]
    tracer.check(units)
    tracer.start(units)
    tracer.wait_ready()
    assert tracer.poll() is None
    tracer.stop()
    report = tracer.report(units)
    assert report.crashed is None and report.observed == {"security_file_open": 0}
    assert report.command[0] == sys.executable and tracer.process.proc.returncode != 0  # SIGINT: KeyboardInterrupt


def test_ready_after_a_delay(tmp_path, stopped):
    tracer = program_tracer(tmp_path, ready_pattern=None, ready_delay="300ms")
    stopped(tracer)
    tracer.check([make_unit()])
    tracer.start([make_unit()])
    started = time.monotonic()
    tracer.wait_ready()
    assert time.monotonic() - started >= 0.3 and tracer.poll() is None


def test_exit_before_ready_is_a_run_error_with_its_log(tmp_path, stopped):
    tracer = program_tracer(tmp_path, "fail")
    stopped(tracer)
    tracer.check([make_unit()])
    tracer.start([make_unit()])
    with pytest.raises(RunError) as err:
        tracer.wait_ready()
    assert "opensnoop exited with code 3 before it was ready" in str(err.value)
    assert "boom: no probes" in str(err.value)


def test_ready_timeout(tmp_path, stopped):
    tracer = program_tracer(tmp_path, ready_pattern="^NEVER$", ready_timeout="300ms")
    stopped(tracer)
    tracer.check([make_unit()])
    tracer.start([make_unit()])
    with pytest.raises(RunError, match="did not print a line matching '\\^NEVER\\$' within 300ms"):
        tracer.wait_ready()


def test_death_mid_run_and_a_tracer_that_ignores_its_stop_signal(tmp_path, stopped):
    dying, stubborn = (
        program_tracer(tmp_path / "a"),
        program_tracer(tmp_path / "b", "ignore-sigint", stop_timeout="300ms"),
    )
    for tracer in (dying, stubborn):
        stopped(tracer)
        tracer.check([make_unit()])
        tracer.start([make_unit()])
        tracer.wait_ready()
    os.kill(dying.process.proc.pid, signal.SIGKILL)
    dying.process.proc.wait_exit(10)
    assert "opensnoop was killed by SIGKILL while the units ran" in dying.poll()
    stubborn.stop()
    assert stubborn.process.proc.returncode == -signal.SIGKILL
    assert stubborn.report([make_unit()]).crashed == "opensnoop did not exit within 300ms of SIGINT and was killed"


# -- real tracers ----------------------------------------------------------------------------


@needs_opensnoop
@pytest.mark.integration
@pytest.mark.alone
def test_opensnoop_counts_each_unit_and_ignores_host_noise(tmp_path):
    fifo, run_id = barrier(tmp_path), f"os-{uuid.uuid4().hex[:8]}"
    a = HostTrigger(fifo, f"{run_id}-a", "security_file_open", ops=3000, sleep="100us", name="a")
    b = HostTrigger(fifo, f"{run_id}-b", "security_file_open", ops=1000, workers=2, sleep="100us", name="b")
    report = trace(build_tracer(CommandTracer, tracer_cfg(), tmp_path), fifo, [a, b], Noise(fifo, a.marker, ops=2000))
    # At ~10k opens/s opensnoop keeps up, but the host's other processes can flood its
    # buffer at any time: then what it missed of the units is within what it reports lost.
    lost, observed = report.lost["opensnoop_lost_events"], report.observed
    assert set(observed) == {"a", "b"}
    assert observed["a"] <= 3000 and observed["b"] <= 2000, "no noise counted"
    assert (3000 - observed["a"]) + (2000 - observed["b"]) <= lost
    assert observed["a"] + observed["b"] >= 0.9 * 5000
    if lost == 0:
        assert observed == {"a": 3000, "b": 2000}
    assert report.metrics["lines"] > 3000 + 2000 + 2 * 2000, "it saw the noise, evt did not count it"
    assert report.cpu_s > 0 and report.peak_rss_bytes > 0 and report.crashed is None
    assert (tmp_path / "tracer" / "command.txt").read_text().split()[:2] == ["stdbuf", "-oL"]


@needs_opensnoop
@pytest.mark.integration
@pytest.mark.alone
def test_opensnoop_loses_events_when_it_falls_behind_and_says_so(tmp_path):
    """opensnoop stopped (SIGSTOP) while two workers open 200,000 files cannot drain its
    perf buffer, whatever the machine's speed: the events it did not print are the ones it
    reports lost once continued (its notices also count the host's other lost opens, so
    observed + lost covers expected)."""
    fifo, ops = barrier(tmp_path), 200_000
    trig = HostTrigger(fifo, f"os-{uuid.uuid4().hex[:8]}", "security_file_open", ops=ops, workers=2)
    report = trace(build_tracer(CommandTracer, tracer_cfg(), tmp_path), fifo, [trig], frozen=True)
    expected, observed, lost = 2 * ops, report.observed["security_file_open"], report.lost_total
    print(f"opensnoop frozen: observed {observed:,} of {expected:,}, lost notices {lost:,}")
    assert expected - observed >= expected // 100, "measurable loss (>= 1%)"
    assert observed + lost >= expected
    assert observed <= expected


@needs_execsnoop
@pytest.mark.integration
@pytest.mark.alone
def test_execsnoop_counts_the_units_execs(tmp_path):
    fifo = barrier(tmp_path)
    trig = HostTrigger(fifo, f"ex-{uuid.uuid4().hex[:8]}", "sched_process_exec", ops=500, workers=2)
    report = trace(build_tracer(CommandTracer, tracer_cfg("execsnoop"), tmp_path), fifo, [trig])
    lost, observed = report.lost["execsnoop_lost_events"], report.observed["sched_process_exec"]
    assert observed <= 1000 and 1000 - observed <= lost, "the host's other processes may flood its buffer"
    assert observed >= 900


@needs_opensnoop
@pytest.mark.integration
@pytest.mark.alone
def test_evt_stress_with_opensnoop_writes_its_counts(tmp_path):
    """A unit of an event opensnoop does not see gets no count; its lost counter is in tracer.csv."""
    import pandas as pd

    run_id = f"osrun-{uuid.uuid4().hex[:8]}"
    proc = run_evt(
        "stress",
        "-e",
        "security_file_open:instances=2:ops=2000:sleep=100us",
        "-e",
        "ptrace:ops=10",
        "tracer=opensnoop",
        f"run_id={run_id}",
        "stress.stress_end_cooldown=0s",
        f"hydra.run.dir={tmp_path}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = pd.read_csv(tmp_path / "events.csv").set_index("unit")
    assert events.loc["security_file_open", "expected"] == 4000
    assert pd.isna(events.loc["ptrace", "observed"])
    tracer = pd.read_csv(tmp_path / "tracer.csv")
    assert tracer.loc[0, "tracer"] == "opensnoop"
    observed, lost = events.loc["security_file_open", "observed"], tracer.loc[0, "lost.opensnoop_lost_events"]
    assert observed <= 4000 and 4000 - observed <= lost, "missed events are within what it reports lost"
    assert observed >= 0.9 * 4000
    assert "tracer opensnoop: cpu" in proc.stdout
    assert run_containers(run_id) == []
