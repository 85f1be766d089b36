"""Every trigger available here, in each of its modes, observed by bpftrace.

All units run at once, as in `evt stress`: one `evt trigger` process per (event, mode),
each blocked at a shared FIFO start barrier; bpftrace starts scoped to each process's
tree and reports attached; the barrier opens; then every unit's count is checked against
its trigger's ground truth: exactly ops x per_op where the target says its per-op count is
exact (native ops, and scripts that make the events themselves), at least that where a
script's tools decide how many they make. A unit whose event did not happen fails either way.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
import uuid

import pytest

from evt.stress.plan import Unit
from evt.tracers.bpftrace.tracer import BpftraceTracer
from evt.workload.catalog import default_catalog
from evt.workload.marker import Target
from helpers import EVT, build_tracer, compose_cfg, make_unit, needs_bpftrace

pytestmark = [pytest.mark.integration, needs_bpftrace]

NATIVE_OPS = 200
SCRIPT_OPS = 3
# scripts that take a second or spawn a namespace per op run fewer ops
SLOW_SCRIPTS = {
    "inotifywait.sh.j2": 1,
    "nc_unix.sh.j2": 2,
    "unshare.sh.j2": 2,
    "sudo_echo.sh.j2": 2,
    "bpftrace_kprobe.sh.j2": 1,
}
CATALOG = default_catalog()
CASES = [(event, mode) for event, trig in sorted(CATALOG.items()) for mode in trig.modes]
_PREFIX = re.compile(r"^\[trigger:\d+:[a-z0-9_]+\] ")


def ops_for(event: str, mode: str) -> int:
    if mode == "native":
        return NATIVE_OPS
    return SLOW_SCRIPTS.get(CATALOG[event].modes[mode].template, SCRIPT_OPS)


def wait_for_line(proc: subprocess.Popen, deadline: float) -> str:
    while True:
        if select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return proc.stdout.readline()
        if time.monotonic() >= deadline:
            return ""


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("observed")
    fifo = run_dir / "barrier"
    os.mkfifo(fifo)
    base = f"it-{uuid.uuid4().hex[:8]}"
    cases = [(e, m) for e, m in CASES if not CATALOG[e].unmet(m)]
    procs: dict[tuple[str, str], subprocess.Popen] = {}
    units: list[Unit] = []
    tracer = build_tracer(BpftraceTracer, compose_cfg(), run_dir)
    try:
        for event, mode in cases:
            run_id = f"{base}-{mode}"
            argv = [
                str(EVT),
                "trigger",
                "-e",
                event,
                "--mode",
                mode,
                "--ops",
                str(ops_for(event, mode)),
                "--sleep",
                "0",
                "--json",
                "--start-fifo",
                str(fifo),
                "--signal-timeout",
                "120s",
                "--run-id",
                run_id,
            ]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs[(event, mode)] = proc
            units.append(
                make_unit(
                    event, name=f"{event}__{mode}", mode=mode, run_id=run_id, ops=ops_for(event, mode), pid=proc.pid
                )
            )
        deadline = time.monotonic() + 60
        for (event, mode), proc in procs.items():
            line = wait_for_line(proc, deadline)
            assert "Waiting at start barrier" in line, (
                f"{event} {mode} did not reach the barrier: {line!r} "
                f"{proc.stderr.read() if proc.poll() is not None else ''}"
            )
        tracer.check(units)
        tracer.start(units)
        tracer.wait_ready()
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release every unit at once
        outcomes = {}
        for case, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            lines = [_PREFIX.sub("", line) for line in out.splitlines()]
            result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
            outcomes[case] = (proc.returncode, result, err)
        assert tracer.poll() is None, tracer.poll()
        tracer.stop()
        report = tracer.report(units)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        tracer.stop()
    return {"units": {u.name: u for u in units}, "outcomes": outcomes, "report": report, "tracer": tracer}


@pytest.mark.parametrize("event, mode", CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_trigger_is_observed(observed, event, mode):
    unmet = CATALOG[event].unmet(mode)
    if unmet:
        pytest.skip(f"not on this host: {'; '.join(unmet)}")
    returncode, result, err = observed["outcomes"][(event, mode)]
    ops = ops_for(event, mode)
    assert returncode == 0, err
    assert (result["ok"], result["errors"]) == (ops, 0)
    unit = observed["units"][f"{event}__{mode}"]
    expected = ops * unit.target.per_op
    seen = observed["report"].observed[unit.name]
    if unit.target.exact:
        assert seen == expected, f"{unit.target.probe} /{unit.target.filter}/: {seen} events for {ops} ops"
    else:
        assert seen >= expected, f"{unit.target.probe} /{unit.target.filter}/: {seen} events for {ops} ops"


def test_the_tracer_reports_its_own_figures(observed):
    report = observed["report"]
    tracer = observed["tracer"]
    assert report.tracer == "bpftrace" and report.crashed is None
    assert report.lost == {"bpftrace_lost_events": 0}
    assert report.cpu_s is not None and report.cpu_s > 0
    assert report.peak_rss_bytes is not None and report.peak_rss_bytes > 10 * 2**20
    assert report.wall_s is not None and report.wall_s > 0
    assert report.command == [report.command[0], "-f", "json", str(tracer.program_path)]
    program = tracer.program_path.read_text()
    for name in observed["units"]:
        assert f'@evt_events["{name}"] = count();' in program
    assert report.log_path == str(tracer.log_path) and tracer.log_path.exists()


@pytest.mark.alone  # a bpftrace starting slowly beside other tests can miss timeout's SIGTERM and never end
def test_bpftrace_attach_filters_count_attaches_not_every_call(tmp_path):
    """bpf_attach, kprobe_attach and kallsyms_lookup_name need kprobes, which this host may
    lack; their filters are checked here on a bpftrace that attaches one tracepoint program
    instead: one attach ioctl counted of its many bpf() calls, and none of its perf events
    (software and tracepoint types) taken for a kprobe."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    script = f'read x < {fifo}; exec timeout 2 bpftrace -e "tracepoint:syscalls:sys_enter_getppid {{ }}"'
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    every_bpf = Target(probe="tracepoint:syscalls:sys_enter_bpf", filter='comm == "bpftrace"', per_op=1, exact=False)
    targets = {
        "bpf_attach": CATALOG["bpf_attach"].modes["script"].target,
        "kprobe_attach": CATALOG["kprobe_attach"].modes["script"].target,
        "kallsyms_lookup_name": CATALOG["kallsyms_lookup_name"].modes["script"].target,
        "every_bpf": every_bpf,
    }
    units = [
        make_unit("bpf_attach", name=name, mode="script", target=target, pid=proc.pid)
        for name, target in targets.items()
    ]
    tracer = build_tracer(BpftraceTracer, compose_cfg(), tmp_path / "run")
    try:
        tracer.start(units)
        tracer.wait_ready()
        with open(fifo, "w") as gate:
            gate.write("go\n")
        assert proc.wait(timeout=60) == 124  # bpftrace ran until timeout stopped it
        tracer.stop()
        observed = tracer.report(units).observed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tracer.stop()
    assert observed["every_bpf"] > 5  # what the old filter counted for bpf_attach
    assert observed["bpf_attach"] == 1  # ioctl(PERF_EVENT_IOC_SET_BPF) of its one program
    assert observed["kprobe_attach"] == observed["kallsyms_lookup_name"] == 0
