"""The bpftrace tracer (evt/tracers/bpftrace/tracer.py + templates/bpftrace_count.bt.j2): the
program it renders, what it refuses, and its counts inside and outside a unit's scope."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from evt import host
from evt.errors import RunError, UsageError
from evt.tracers.bpftrace.tracer import TREE_DEPTH, BpftraceTracer, missing_probe
from evt.workload.marker import Target
from helpers import HostTrigger, Noise, barrier, build_tracer, make_unit, needs_bpftrace, trace

EVENT = "security_file_open"


def block_of(program: str, name: str) -> str:
    """The probe block of one unit, from its comment line to its closing brace."""
    start = program.index(f"// unit {name}:")
    return program[start : program.index("}\n", start) + 2]


# -- the program ---------------------------------------------------------------------------


def test_program_without_scope_filters_on_the_marker_only(cfg, tmp_path):
    unit = make_unit()
    block = block_of(build_tracer(BpftraceTracer, cfg, tmp_path).program([unit]), EVENT)
    assert "scope: none" in block
    assert f"\ntracepoint:syscalls:sys_enter_openat\n/{unit.target.filter}/\n" in block
    assert "cgroup" not in block and "real_parent" not in block
    assert f'@evt_events["{EVENT}"] = count();' in block


def test_program_with_a_cgroup_scope(cfg, tmp_path):
    path = "/sys/fs/cgroup/unified/docker/0123abcd"
    unit = make_unit(cgroup_path=path, pid=4242)  # the cgroup wins over the pid
    block = block_of(build_tracer(BpftraceTracer, cfg, tmp_path).program([unit]), EVENT)
    assert f'/cgroup == cgroupid("{path}") && ({unit.target.filter})/' in block
    assert "real_parent" not in block


def test_program_with_a_process_tree_scope(cfg, tmp_path):
    unit = make_unit(pid=4242)
    block = block_of(build_tracer(BpftraceTracer, cfg, tmp_path).program([unit]), EVENT)
    chain = " || ".join(
        ["pid == 4242"] + [f"curtask{'->real_parent' * n}->tgid == 4242" for n in range(1, TREE_DEPTH + 1)]
    )
    assert f"/({unit.target.filter}) && ({chain})/" in block
    assert "cgroupid" not in block


def test_program_lists_every_probe_of_a_target_and_every_unit(cfg, tmp_path):
    a = make_unit("security_inode_symlink", name="symlinks")
    b = make_unit(name="opens", pid=7)
    program = build_tracer(BpftraceTracer, cfg, tmp_path).program([a, b])
    assert "tracepoint:syscalls:sys_enter_symlink,\ntracepoint:syscalls:sys_enter_symlinkat\n/" in block_of(
        program, "symlinks"
    )
    assert program.count("= count();") == 2
    assert '@evt_events["opens"]' in block_of(program, "opens")


@pytest.mark.parametrize("path", ['/sys/fs/cgroup/x") || 1 == 1 || ("', "relative/path", "/a b"])
def test_cgroup_paths_that_would_break_the_program_are_refused(cfg, tmp_path, path):
    with pytest.raises(UsageError, match="cgroup path"):
        build_tracer(BpftraceTracer, cfg, tmp_path).program([make_unit(cgroup_path=path)])


def test_unit_names_that_would_break_the_program_are_refused(cfg, tmp_path):
    with pytest.raises(UsageError, match="cannot be a bpftrace map key"):
        build_tracer(BpftraceTracer, cfg, tmp_path).program([make_unit(name='x"]')])


@needs_bpftrace
@pytest.mark.integration
@pytest.mark.parametrize("scope", ["none", "pid", "cgroup"])
def test_rendered_program_compiles(cfg, tmp_path, scope):
    extra = {"pid": {"pid": os.getpid()}, "cgroup": {"cgroup_path": str(host.process_cgroup2(os.getpid()))}}.get(
        scope, {}
    )
    units = [make_unit(**extra), make_unit("security_inode_symlink", name="symlinks", **extra)]
    program = tmp_path / "p.bt"
    program.write_text(build_tracer(BpftraceTracer, cfg, tmp_path).program(units))
    proc = subprocess.run(
        ["bpftrace", "--emit-elf", str(tmp_path / "p.elf"), str(program)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p.elf").stat().st_size > 0


# -- refusals --------------------------------------------------------------------------------


def test_missing_binary_is_a_clear_usage_error(cfg, tmp_path):
    cfg.bpftrace.binary = "evt-test-no-bpftrace"
    tracer = build_tracer(BpftraceTracer, cfg, tmp_path)
    with pytest.raises(UsageError) as err:
        tracer.check([make_unit()])
    message = str(err.value)
    assert "bpftrace not found: 'evt-test-no-bpftrace' is not an executable on PATH" in message
    assert "bpftrace.binary=" in message and "apt-get install bpftrace" in message
    assert tracer.command([make_unit()])[0] == "evt-test-no-bpftrace"


@pytest.mark.skipif(not host.tracefs_mounted(), reason="tracefs not mounted")
def test_a_probe_that_does_not_exist_is_refused_before_starting(cfg, tmp_path):
    target = Target("tracepoint:syscalls:sys_enter_openat,tracepoint:syscalls:sys_enter_evt_nope", "1", 1, True)
    tracer = build_tracer(BpftraceTracer, cfg, tmp_path)
    if not shutil.which("bpftrace"):
        pytest.skip("bpftrace not installed")
    with pytest.raises(UsageError) as err:
        tracer.check([make_unit(target=target)])
    message = str(err.value)
    assert "probe tracepoint:syscalls:sys_enter_evt_nope of unit security_file_open" in message
    assert (
        "does not exist on this kernel: no /sys/kernel/tracing/events/syscalls/sys_enter_evt_nope in tracefs" in message
    )
    assert "triggers/security_file_open.yaml" in message
    assert not (tmp_path / "tracer").exists(), "nothing started"


@pytest.mark.skipif(not host.tracefs_mounted(), reason="tracefs not mounted")
def test_probe_checks(tmp_path):
    assert missing_probe("tracepoint:syscalls:sys_enter_openat") is None
    assert missing_probe("tracepoint:sched:sched_process_exec") is None
    assert missing_probe("rawtracepoint:sched_process_exec") is None
    assert "no tracepoint named 'evt_nope'" in missing_probe("rawtracepoint:evt_nope")
    assert "expected tracepoint:<category>:<name>" in missing_probe("tracepoint:openat")
    assert "checks tracepoint, rawtracepoint and kprobe probes only" in missing_probe("uprobe:/bin/sh:main")
    kprobes = host.check_kernel_feature("kprobes")
    if kprobes:
        assert missing_probe("kprobe:do_sys_openat2") == kprobes
    else:
        assert missing_probe("kprobe:evt_no_such_function_") is not None


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not host.tracefs_mounted(),
    reason="needs root, unshare and tracefs (to unmount it in a private mount namespace)",
)
def test_tracefs_not_mounted_is_a_clear_usage_error(tmp_path):
    """Runs the check in a mount namespace of its own where tracefs is unmounted."""
    code = textwrap.dedent(f"""
        from evt.errors import UsageError
        from evt.cli.hydra_app import compose
        from pathlib import Path
        from evt.plugins import PluginOption, make_tracer
        from evt.stress.plan import RunContext
        run = RunContext("r1", Path({str(tmp_path)!r}), "docker")
        try:
            make_tracer(PluginOption.of(compose(["tracer=bpftrace"]).tracer), run).check([])
        except UsageError as exc:
            print(exc)
    """)
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'umount {host.TRACEFS} && exec "$0" -c "$1"',
            sys.executable,
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"tracefs is not mounted at {host.TRACEFS}")
    assert f"mount -t tracefs tracefs {host.TRACEFS}" in proc.stdout
    assert host.tracefs_mounted(), "the host's tracefs stays mounted"


def test_stop_and_report_before_start_are_harmless(cfg, tmp_path):
    tracer = build_tracer(BpftraceTracer, cfg, tmp_path)
    tracer.stop()
    tracer.stop()
    assert tracer.poll() is None
    report = tracer.report([make_unit()])
    assert report.observed is None and report.cpu_s is None


# -- running ---------------------------------------------------------------------------------


@pytest.fixture
def tracer(cfg, tmp_path):
    t = build_tracer(BpftraceTracer, cfg, tmp_path)
    yield t
    t.stop()
    assert t.process.proc is None or not t.process.proc.running


@needs_bpftrace
@pytest.mark.integration
def test_a_program_bpftrace_refuses_fails_wait_ready_with_its_error(tracer):
    target = Target("tracepoint:syscalls:sys_enter_openat", "comm ==", 1, True)
    tracer.start([make_unit(target=target)])
    with pytest.raises(RunError) as err:
        tracer.wait_ready()
    assert "bpftrace exited with code 1 before it was ready; its log " in str(err.value)
    assert "syntax error" in str(err.value)


@needs_bpftrace
@pytest.mark.integration
def test_ready_timeout(cfg, tmp_path):
    cfg.bpftrace.ready_timeout = "1ns"
    tracer = build_tracer(BpftraceTracer, cfg, tmp_path)
    try:
        tracer.start([make_unit()])
        with pytest.raises(RunError, match="did not attach its probes within 1ns"):
            tracer.wait_ready()
    finally:
        tracer.stop()


@needs_bpftrace
@pytest.mark.integration
def test_a_tracer_that_dies_is_reported(tracer):
    units = [make_unit()]
    tracer.start(units)
    tracer.wait_ready()
    assert tracer.poll() is None
    os.kill(tracer.process.proc.pid, signal.SIGKILL)
    tracer.process.proc.wait_exit(10)
    reason = tracer.poll()
    assert reason and "bpftrace was killed by SIGKILL while the units ran" in reason
    tracer.stop()
    report = tracer.report(units)
    assert report.observed is None and report.crashed == reason


@needs_bpftrace
@pytest.mark.integration
def test_files_in_the_run_dir_and_a_clean_stop(tracer, tmp_path):
    units = [make_unit()]
    tracer.start(units)
    started = time.monotonic()
    tracer.wait_ready()
    assert time.monotonic() - started < 30
    tracer.stop()
    report = tracer.report(units)
    assert report.observed == {EVENT: 0} and report.crashed is None
    assert report.lost == {"bpftrace_lost_events": 0}
    assert report.cpu_s > 0 and report.peak_rss_bytes > 0
    files = {p.name for p in (tmp_path / "tracer").iterdir()}
    assert files == {"bpftrace.bt", "bpftrace.log", "bpftrace.out", "resource_timeseries.csv"}
    assert "evt-bpftrace: done" in (tmp_path / "tracer" / "bpftrace.out").read_text()  # END ran on SIGINT


# -- scope: a unit's events outside its scope are not counted --------------------------------


@pytest.fixture
def cgroup():
    root = host.cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy")
    path = root / f"evt-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    deadline = time.monotonic() + 10
    while True:
        try:
            path.rmdir()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@needs_bpftrace
@pytest.mark.integration
@pytest.mark.parametrize("scope", ["pid", "cgroup"])
def test_events_outside_a_units_scope_are_not_counted(cfg, tmp_path, request, scope):
    """An impostor outside the unit's scope opens the marker file under the marker comm:
    only the unit without a scope counts it."""
    ops, workers, noise_ops = 3000, 2, 2000
    fifo = barrier(tmp_path)
    cgroup_dir = request.getfixturevalue("cgroup") if scope == "cgroup" else None

    def into_cgroup():
        if cgroup_dir is not None:
            (cgroup_dir / "cgroup.procs").write_text(str(os.getpid()))

    trig = HostTrigger(fifo, f"scope-{uuid.uuid4().hex[:8]}", EVENT, ops=ops, workers=workers, preexec_fn=into_cgroup)
    noise = Noise(fifo, trig.marker, noise_ops, kind="impostor")
    if cgroup_dir is not None:
        assert host.process_cgroup2(trig.proc.pid) == cgroup_dir
        assert host.process_cgroup2(noise.proc.pid) != cgroup_dir
    units = [
        trig.unit("scoped", **({"cgroup_path": str(cgroup_dir)} if cgroup_dir else {"pid": trig.proc.pid})),
        trig.unit("unscoped"),
    ]
    report = trace(build_tracer(BpftraceTracer, cfg, tmp_path), fifo, [trig], noise, units=units)
    assert report.observed == {"scoped": ops * workers, "unscoped": ops * workers + noise_ops}


@pytest.mark.parametrize("key", ["ready_timeout", "init_cooldown", "stop_timeout"])
def test_bad_durations_in_the_config_are_refused_when_the_tracer_is_built(cfg, tmp_path, key):
    cfg.bpftrace[key] = "soon"
    with pytest.raises(UsageError, match=f"invalid bpftrace.{key} 'soon'"):
        build_tracer(BpftraceTracer, cfg, tmp_path)


# -- stream mode: one printf per event through bpftrace's output buffer ----------------------


def test_stream_mode_prints_each_event_and_keeps_the_count(cfg, tmp_path):
    cfg.bpftrace.mode = "stream"
    units = [make_unit(), make_unit("security_inode_symlink", name="symlinks")]
    program = build_tracer(BpftraceTracer, cfg, tmp_path).program(units)
    for unit in units:
        block = block_of(program, unit.name)
        assert f'@evt_events["{unit.name}"] = count();\n  printf("evt:{unit.name}\\n");' in block
    cfg.bpftrace.mode = "count"
    assert 'printf("evt:' not in build_tracer(BpftraceTracer, cfg, tmp_path).program(units)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("mode", "fast", "invalid bpftrace.mode 'fast': use bpftrace.mode=count"),
        ("buffer_pages", 3, "invalid bpftrace.buffer_pages 3: the per-CPU output buffer is a power of two pages"),
        ("buffer_pages", 0, "invalid bpftrace.buffer_pages 0"),
    ],
)
def test_bad_stream_settings_are_refused_by_check(cfg, tmp_path, key, value, message):
    cfg.bpftrace[key] = value
    with pytest.raises(UsageError, match=message):
        build_tracer(BpftraceTracer, cfg, tmp_path).check([make_unit()])


def run_stream(cfg, tmp_path, ops: int, workers: int, sleep: str, buffer_pages: int | None, frozen: bool = False):
    """A host trigger (and noise) traced by bpftrace in stream mode, scoped to its tree: the report
    (frozen: bpftrace is stopped while the trigger runs, see helpers.trace)."""
    cfg.bpftrace.mode, cfg.bpftrace.buffer_pages = "stream", buffer_pages
    fifo = barrier(tmp_path)
    trig = HostTrigger(fifo, f"stream-{uuid.uuid4().hex[:8]}", EVENT, ops=ops, workers=workers, sleep=sleep)
    return trace(
        build_tracer(BpftraceTracer, cfg, tmp_path),
        fifo,
        [trig],
        Noise(fifo, trig.marker, ops=1000),
        frozen=frozen,
        pid=trig.proc.pid,
    )


@needs_bpftrace
@pytest.mark.integration
@pytest.mark.alone
def test_stream_mode_with_room_in_its_buffer_receives_every_event(cfg, tmp_path):
    report = run_stream(cfg, tmp_path, ops=5000, workers=2, sleep="100us", buffer_pages=None)
    assert report.seen == {EVENT: 10_000}, "the probe saw every event and no noise"
    assert report.observed == {EVENT: 10_000}
    assert report.lost == {"bpftrace_lost_events": 0} and report.metrics["undelivered"] == 0


@needs_bpftrace
@pytest.mark.integration
@pytest.mark.alone
def test_stream_mode_with_one_page_loses_events_and_the_kernel_count_accounts_for_them(cfg, tmp_path):
    """Two workers against a one-page buffer per CPU that bpftrace, stopped (SIGSTOP) while
    they run, cannot drain whatever the machine's speed: userspace receives part of what the
    probe saw; the in-kernel count says how much was lost, bpftrace's own notice at most
    that much."""
    ops, workers = 150_000, 2
    report = run_stream(cfg, tmp_path, ops=ops, workers=workers, sleep="0", buffer_pages=1, frozen=True)
    expected, seen, observed = ops * workers, report.seen[EVENT], report.observed[EVENT]
    notices = report.lost["bpftrace_lost_events"]
    print(f"bpftrace stream, 1 page: observed {observed:,} of {expected:,}; lost notices {notices:,}")
    assert seen == expected
    assert expected - observed >= expected // 100, "measurable loss (>= 1%)"
    assert observed + report.metrics["undelivered"] == expected
    assert 0 < notices <= expected - observed
