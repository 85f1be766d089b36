"""TraceeTracer: command rendering, checks, and the lifecycle against tests/support/tracee_standin.py.

The stand-in is NOT Tracee: it imitates Tracee's flags, process lifecycle and HTTP
endpoints so these tests run where no Tracee exists. Nothing here is a Tracee result.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from evt.errors import RunError, UsageError
from evt.tracers.tracee import checks
from evt.tracers.tracee.checks import find_tracee_processes
from evt.tracers.tracee.command import parse_output, render_command
from evt.tracers.tracee.flavour import Flavour, detect
from evt.tracers.tracee.manual import MANUAL_PROMPT, manual_instructions
from evt.tracers.tracee.metrics import endpoints
from evt.tracers.tracee.tracer import TraceeTracer
from helpers import (
    STANDIN,
    build_tracer,
    compose_cfg,
    fixture,
    free_port,
    gone,
    group_gone,
    make_unit,
    reap,
    standin_cfg,
)

CID_A = "a1" * 32
CID_B = "b2" * 32
BIN = "/opt/tracee/dist/tracee"
SERVERS = ("metrics", "healthz", "pprof", "pyroscope")


def render(*overrides: str, units=None, run_dir=Path("/run/evt"), **updates):
    cfg = compose_cfg("tracer=tracee", f"tracee.binary={BIN}", *overrides, **updates)
    if units is None:
        units = [make_unit("security_file_open", container_id=CID_A), make_unit("ptrace", container_id=CID_B)]
    return render_command(cfg.tracee, units, run_dir, detect(str(cfg.tracee.flavour), BIN), runner=str(cfg.runner.name))


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


@pytest.fixture
def said(caplog):
    """The lines the tracer said (through logging, under evt.tracers), in order."""
    caplog.set_level(logging.INFO, logger="evt.tracers")
    return lambda: [r.getMessage() for r in caplog.records if r.name.startswith("evt.tracers")]


# ------------------------------------------------------------------ rendering


def test_render_default_destinations_syntax_container_scope():
    assert render() == [
        BIN,
        "--scope",
        f"container={CID_A},{CID_B}",
        "--events",
        "security_file_open,ptrace",
        "--output",
        "none",
        "--server",
        "metrics",
        "--server",
        "healthz",
        "--server",
        "pprof",
        "--server",
        "http-address=127.0.0.1:3366",
    ]


def test_render_json_destinations():
    argv = render("tracee.output=json:/data/ev.json", "tracee.output_syntax=destinations")
    assert argv[5:11] == [
        "--output",
        "destinations.evt.type=file",
        "--output",
        "destinations.evt.format=json",
        "--output",
        "destinations.evt.path=/data/ev.json",
    ]


def test_render_json_legacy():
    argv = render("tracee.output=json:/data/ev.json", "tracee.output_syntax=legacy")
    assert pairs(argv, "--output") == ["json:/data/ev.json"]


@pytest.mark.parametrize("syntax", ["destinations", "legacy"])
def test_render_none_both_syntaxes(syntax):
    assert pairs(render(f"tracee.output_syntax={syntax}"), "--output") == ["none"]


def test_render_json_without_path_goes_to_run_dir(tmp_path):
    argv = render("tracee.output=json", "tracee.output_syntax=legacy", run_dir=tmp_path)
    assert pairs(argv, "--output") == [f"json:{tmp_path.resolve()}/tracer/events.json"]


def test_render_relative_json_path_is_made_absolute():
    argv = render("tracee.output=json:ev.json", "tracee.output_syntax=legacy")
    assert pairs(argv, "--output") == [f"json:{os.path.abspath('ev.json')}"]


def test_render_raw_output_values_pass_through():
    spec = "destinations.mine.type=file destinations.mine.format=json destinations.mine.path=/data/x.json"
    argv = render(**{"tracee.output": spec})
    assert pairs(argv, "--output") == spec.split()
    out = parse_output(spec, "destinations", Path("/run/evt"))
    assert out.kind == "raw" and out.json_file == "/data/x.json"
    assert parse_output("table", "destinations", Path("/r")).json_file is None
    assert parse_output("json:stdout", "destinations", Path("/r")).json_file is None


def test_render_passes_tracee_its_name_for_socked_dup():
    units = [make_unit("socked_dup", container_id=CID_A), make_unit("ptrace", container_id=CID_B)]
    assert pairs(render(units=units), "--events") == ["socket_dup,ptrace"]


def test_the_stand_in_refuses_socked_dup_as_real_tracee_does(tmp_path):
    run = subprocess.run(
        [sys.executable, str(STANDIN), "--events", "ptrace,socked_dup"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 1 and "invalid event to trace: socked_dup" in run.stdout + run.stderr


def test_render_tree_scope_for_local_units():
    units = [make_unit("security_file_open", pid=4242), make_unit("ptrace", pid=4343)]
    argv = render("runner=local", units=units)
    assert argv[:7] == [BIN, "--scope", "tree=4242", "--scope", "tree=4343", "--events", "security_file_open,ptrace"]


def test_render_placeholders_before_units_exist():
    units = [make_unit("security_file_open"), make_unit("ptrace")]
    docker = render("runner=docker", units=units)
    assert pairs(docker, "--scope") == ["container=<id-of-evt-test-run-security_file_open>,<id-of-evt-test-run-ptrace>"]
    local = render("runner=local", units=units)
    assert pairs(local, "--scope") == ["tree=<pid-of-security_file_open>", "tree=<pid-of-ptrace>"]


def test_render_refuses_mixed_container_and_tree_units():
    units = [make_unit("security_file_open", container_id=CID_A), make_unit("ptrace", pid=5)]
    with pytest.raises(RunError, match="ANDs a container scope with a tree scope"):
        render(units=units)


@pytest.mark.parametrize("server", SERVERS)
def test_render_each_server_toggle_alone(server):
    toggles = [f"tracee.{s}={'true' if s == server else 'false'}" for s in SERVERS]
    argv = render(*toggles)
    assert pairs(argv, "--server") == [server, "http-address=127.0.0.1:3366"]


def test_render_no_server_flags_when_all_off():
    argv = render(*[f"tracee.{s}=false" for s in SERVERS], "tracee.http_address=127.0.0.1:9999")
    assert "--server" not in argv
    assert not any("http-address" in a for a in argv)


def test_render_http_address():
    argv = render("tracee.http_address=0.0.0.0:4466")
    assert argv[-2:] == ["--server", "http-address=0.0.0.0:4466"]


def test_render_extra_args_verbatim_one_argument_each():
    extra = [
        "--log",
        "debug",
        "--scope",
        "comm!=evt",
        "--output",
        "option:parse-arguments",
        "a value with spaces; rm -rf / $(x) 'q'",
    ]
    argv = render(**{"tracee.extra_args": extra})
    assert argv[-len(extra) :] == extra


@pytest.mark.parametrize(
    "syntax,output,scope",
    list(itertools.product(["destinations", "legacy"], ["none", "json:/d/e.json"], ["container", "tree"])),
)
@pytest.mark.parametrize("toggles", list(itertools.product([False, True], repeat=4)))
def test_render_every_combination(syntax, output, scope, toggles):
    if scope == "container":
        units = [make_unit("security_file_open", container_id=CID_A), make_unit("ptrace", container_id=CID_B)]
        want_scope = ["--scope", f"container={CID_A},{CID_B}"]
        runner = "runner=docker"
    else:
        units = [make_unit("security_file_open", pid=11), make_unit("ptrace", pid=12)]
        want_scope = ["--scope", "tree=11", "--scope", "tree=12"]
        runner = "runner=local"
    if output == "none":
        want_output = ["--output", "none"]
    elif syntax == "legacy":
        want_output = ["--output", "json:/d/e.json"]
    else:
        want_output = [
            "--output",
            "destinations.evt.type=file",
            "--output",
            "destinations.evt.format=json",
            "--output",
            "destinations.evt.path=/d/e.json",
        ]
    want_server: list[str] = []
    for name, on in zip(SERVERS, toggles, strict=True):
        if on:
            want_server += ["--server", name]
    if any(toggles):
        want_server += ["--server", "http-address=127.0.0.1:7777"]
    # the combination's values set on the runner's composed config (128 combinations: composing
    # each would cost a tenth of a second apiece; overrides reaching these keys are tested in
    # test_cli_stress.py)
    settings = {
        "tracee.output": output,
        "tracee.output_syntax": syntax,
        "tracee.http_address": "127.0.0.1:7777",
        "tracee.extra_args": ["--log", "info"],
    }
    settings.update({f"tracee.{n}": on for n, on in zip(SERVERS, toggles, strict=True)})
    argv = render(runner, units=units, **settings)
    assert argv == [
        BIN,
        *want_scope,
        "--events",
        "security_file_open,ptrace",
        *want_output,
        *want_server,
        "--log",
        "info",
    ]


def test_render_events_deduplicated_in_unit_order():
    units = [make_unit("ptrace", container_id=CID_A), make_unit("security_file_open", container_id=CID_B)]
    units.append(make_unit("ptrace", container_id="c3" * 32))
    assert pairs(render(units=units), "--events") == ["ptrace,security_file_open"]


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"tracee.output_syntax": "v2"}, "invalid tracee.output_syntax"),
        ({"tracee.http_address": "localhost"}, "invalid tracee.http_address"),
        ({"tracee.http_address": "127.0.0.1:99999"}, "invalid tracee.http_address"),
        ({"tracee.extra_args": ["--log", "de\nbug"]}, "line breaks"),
        ({"tracee.template": "no-such.j2"}, "not found"),
        ({"tracee.template": "/no/such/dir/t.j2"}, "does not exist"),
    ],
)
def test_render_bad_settings(bad, match):
    with pytest.raises(UsageError, match=match):
        render(**bad)


def test_render_bad_event_name():
    unit = make_unit("security_file_open", container_id=CID_A)
    unit.event = "evil;rm"
    with pytest.raises(UsageError, match="invalid event name"):
        render(units=[unit])


def test_render_custom_template_path(tmp_path):
    tpl = tmp_path / "mine.j2"
    tpl.write_text(
        "{{ binary }}\n--events\n{{ events | join(',') }}\n{% for s in scopes %}--scope\n{{ s }}\n{% endfor %}"
    )
    argv = render(**{"tracee.template": str(tpl)})
    assert argv == [BIN, "--events", "security_file_open,ptrace", "--scope", f"container={CID_A},{CID_B}"]


# ------------------------------------------------------------------ manual mode helpers


def test_manual_instructions_and_endpoints(tmp_path):
    cfg = compose_cfg(
        "tracer=tracee",
        f"tracee.binary={BIN}",
        "tracee.auto=false",
        "tracee.http_address=127.0.0.1:4000",
        "tracee.pyroscope=true",
    )
    units = [make_unit("security_file_open", container_id=CID_A), make_unit("ptrace", container_id=CID_B)]
    lines = manual_instructions(cfg.tracee, units, tmp_path, Flavour("main"), str(cfg.runner.name))
    assert lines[0] == f"Container scope filter: --scope container={CID_A},{CID_B}"
    assert "Please start Tracee in another terminal with:" in lines
    suggested = lines[-1].strip()
    assert suggested.startswith(f"sudo {BIN} --scope container={CID_A},{CID_B} --events security_file_open,ptrace")
    assert "--server http-address=127.0.0.1:4000" in suggested
    assert MANUAL_PROMPT == "Press ENTER when Tracee is ready to continue..."
    assert endpoints(cfg.tracee) == [
        "Pyroscope UI: http://localhost:4040/?query=tracee.cpu",
        "Grafana dashboard: http://localhost:3000/",
        "Pprof endpoint: http://localhost:4000/debug/pprof",
        "Metrics endpoint: http://localhost:4000/metrics",
    ]
    tracer = build_tracer(TraceeTracer, cfg, tmp_path)  # the hooks the session calls
    assert tracer.start_title() == "Configuring & Starting Tracee"  # the original's header, in both modes
    assert tracer.manual_instructions(units) == lines
    assert tracer.manual_prompt() == MANUAL_PROMPT
    assert tracer.endpoints() == endpoints(cfg.tracee)


def test_auto_mode_hooks_ask_nothing_of_the_user(tmp_path):
    cfg = compose_cfg("tracer=tracee", f"tracee.binary={BIN}")
    tracer = build_tracer(TraceeTracer, cfg, tmp_path)
    assert tracer.start_title() == "Configuring & Starting Tracee"
    assert tracer.manual_instructions([make_unit("ptrace", container_id=CID_A)]) == []
    assert tracer.manual_prompt() is None
    assert tracer.endpoints() == endpoints(cfg.tracee)


def test_manual_instructions_with_the_default_settings(tmp_path):
    cfg = compose_cfg("tracer=tracee", "tracee.auto=false")
    units = [make_unit("security_file_open", container_id=CID_A)]
    lines = manual_instructions(cfg.tracee, units, tmp_path, Flavour("main"), str(cfg.runner.name))
    assert lines[0] == f"Container scope filter: --scope container={CID_A}"
    assert lines[-1].startswith(
        f"  sudo ./dist/tracee --scope container={CID_A} --events security_file_open --output none"
    )
    local = manual_instructions(cfg.tracee, [make_unit("ptrace", pid=77)], tmp_path, Flavour("main"), "local")
    assert local[0] == "Process tree scope filter: --scope tree=77"


def test_endpoints_defaults_and_toggles():
    cfg = compose_cfg("tracer=tracee")
    assert endpoints(cfg.tracee) == [
        "Pprof endpoint: http://localhost:3366/debug/pprof",
        "Metrics endpoint: http://localhost:3366/metrics",
        "Grafana dashboard: http://localhost:3000/",
    ]
    cfg = compose_cfg("tracer=tracee", "tracee.metrics=false", "tracee.pprof=false")
    assert endpoints(cfg.tracee) == []


def test_manual_mode_skips_binary_and_running_checks(tmp_path):
    cfg = compose_cfg("tracer=tracee", "tracee.binary=/nonexistent/tracee", "tracee.auto=false")
    build_tracer(TraceeTracer, cfg, tmp_path).check([])


def test_manual_mode_refuses_keep(tmp_path):
    cfg = compose_cfg("tracer=tracee", "tracee.auto=false", "tracee.keep=true")
    with pytest.raises(UsageError, match=r"--keep-tracee requires --auto-tracee=true"):
        build_tracer(TraceeTracer, cfg, tmp_path).check([])
    build_tracer(TraceeTracer, compose_cfg("tracer=tracee", "tracee.keep=true", "tracee.binary=/bin/true"), tmp_path)


@pytest.mark.parametrize("key", ["ready_timeout", "init_cooldown", "stop_timeout", "start_grace", "drain"])
def test_bad_durations_are_refused_when_the_tracer_is_built(tmp_path, key):
    with pytest.raises(UsageError, match=f"invalid tracee.{key} 'soon'"):
        build_tracer(TraceeTracer, compose_cfg("tracer=tracee", f"tracee.{key}=soon"), tmp_path)


# ------------------------------------------------------------------ checks


def tracer_for(cfg, tmp_path) -> TraceeTracer:
    return build_tracer(TraceeTracer, cfg, tmp_path / "run")


def test_check_missing_binary(tmp_path):
    cfg = compose_cfg("tracer=tracee", f"tracee.binary={tmp_path}/dist/tracee", f"tracee.pidfile={tmp_path}/tracee.pid")
    with pytest.raises(UsageError) as err:
        tracer_for(cfg, tmp_path).check([])
    msg = str(err.value)
    assert msg.startswith(f'tracee binary not found at "{tmp_path}/dist/tracee"')
    assert "make tracee" in msg
    assert "--tracee-binary /path/to/tracee" in msg
    assert "tracer=bpftrace" in msg
    assert "--auto-tracee=false" in msg


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_check_not_executable(tmp_path, kind):
    target = tmp_path / "tracee"
    if kind == "file":
        target.write_text("#!/bin/sh\n")
        target.chmod(0o644)
    else:
        target.mkdir()
    cfg = compose_cfg("tracer=tracee", f"tracee.binary={target}", f"tracee.pidfile={tmp_path}/tracee.pid")
    with pytest.raises(UsageError, match=r"exists but is not executable[\s\S]*chmod \+x"):
        tracer_for(cfg, tmp_path).check([])


@pytest.fixture
def procs():
    """Helper processes a test starts; every one is killed and reaped at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        reap(proc.pid)  # each runs in its own process group: its children go too
        proc.wait(timeout=5)
        assert gone(proc.pid)
        assert group_gone(proc.pid), f"process group {proc.pid} still has live members"


def spawn(procs, argv, **kw) -> subprocess.Popen:
    kw.setdefault("start_new_session", True)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    procs.append(proc)
    return proc


def test_check_refuses_live_pidfile_on_v024_only(tmp_path, procs):
    live = spawn(procs, ["sleep", "30"])
    pidfile = tmp_path / "tracee" / "tracee.pid"
    pidfile.parent.mkdir()
    pidfile.write_text(f"{live.pid}\n")
    main = standin_cfg(tmp_path, free_port(), f"tracee.pidfile={pidfile}", "tracee.flavour=main")
    tracer_for(main, tmp_path).check([])  # main writes no pidfile: a stale one says nothing
    cfg = standin_cfg(tmp_path, free_port(), f"tracee.pidfile={pidfile}", "tracee.flavour=v0.24")
    with pytest.raises(UsageError) as err:
        tracer_for(cfg, tmp_path).check([])
    msg = str(err.value)
    assert f"Tracee running with PID {live.pid} (from PID file: {pidfile})" in msg
    assert f"kill -TERM {live.pid}" in msg
    assert "--auto-tracee=false" in msg


def test_check_warns_on_stale_pidfile(tmp_path, procs, said):
    dead = spawn(procs, ["true"])
    dead.wait()
    pidfile = tmp_path / "tracee.pid"
    pidfile.write_text(f"{dead.pid}\n")
    cfg = standin_cfg(tmp_path, free_port(), "tracee.flavour=v0.24")
    tracer_for(cfg, tmp_path).check([])
    assert f"Warning: Found stale Tracee PID file at {pidfile} (PID: {dead.pid})" in said()


def test_check_ignores_commands_merely_mentioning_tracee(tmp_path, procs):
    mention = spawn(procs, [sys.executable, "-c", "import time; time.sleep(30)", "--tracee-binary", "/x/tracee"])
    script = tmp_path / "tracee-helper.sh"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    helper = spawn(procs, [str(script)])
    time.sleep(0.2)  # let both exec
    found = [pid for pid, _ in find_tracee_processes()]
    assert mention.pid not in found and helper.pid not in found
    cfg = standin_cfg(tmp_path, free_port())
    tracer_for(cfg, tmp_path).check([])  # the stand-in (tracee_standin.py) is no `tracee` either


def test_running_tracee_is_found_by_exact_process_name_as_pgrep_x(tmp_path, procs, monkeypatch):
    assert checks.TRACEE_NAMES == ("tracee", "tracee-e2e", "tracee-e2e-net")  # scripts/tracee_common.sh
    # Other engineers' runs share this host: a process really named `tracee` would make
    # their Tracee runs refuse to start, so this test uses names only it has.
    names = (f"evtt{os.getpid() % 10**6}", f"evtt{os.getpid() % 10**6}-e2e")
    monkeypatch.setattr(checks, "TRACEE_NAMES", names)
    by_argv0 = spawn(procs, [names[0], "30"], executable=shutil.which("sleep"))  # comm stays `sleep`
    exe = tmp_path / "bin" / names[1]
    exe.parent.mkdir()
    shutil.copy(shutil.which("sleep"), exe)
    by_name = spawn(procs, [str(exe), "30"])
    longer = tmp_path / "bin" / f"{names[0]}_start.sh"  # the original's `pgrep -a tracee` matched this
    shutil.copy(shutil.which("sleep"), longer)
    prefixed = spawn(procs, [str(longer), "30"])
    deadline = time.monotonic() + 5
    while by_name.pid not in dict(find_tracee_processes(names)) and time.monotonic() < deadline:
        time.sleep(0.05)  # until it has exec'd
    found = dict(find_tracee_processes(names))
    assert by_name.pid in found and by_argv0.pid not in found and prefixed.pid not in found
    cfg = standin_cfg(tmp_path, free_port())
    with pytest.raises(UsageError, match="tracee is already running") as err:
        tracer_for(cfg, tmp_path).check([])
    assert f"  - {by_name.pid} {exe} 30" in str(err.value)


# ------------------------------------------------------------------ lifecycle (stand-in)


@pytest.fixture
def tracers():
    """Every TraceeTracer a test makes; any process left is killed and must be gone."""
    made: list[TraceeTracer] = []
    yield made
    for tracer in made:
        proc = getattr(tracer.lifecycle, "proc", None)  # manual mode starts none
        if proc is not None:
            if proc.running:
                reap(proc.pid)
            proc.wait_exit(5)
            assert gone(proc.pid), f"stand-in {proc.pid} still running"
            assert group_gone(proc.pid), f"process group {proc.pid} still has live members"


def new_tracer(tracers, cfg, tmp_path) -> TraceeTracer:
    tracer = build_tracer(TraceeTracer, cfg, tmp_path / "run")
    tracers.append(tracer)
    return tracer


UNITS = [make_unit("security_file_open", container_id=CID_A), make_unit("ptrace", container_id=CID_B)]


def test_standin_is_executable():
    assert os.access(STANDIN, os.X_OK)
    assert STANDIN.read_text().startswith("#!/usr/bin/env python3\n")
    assert "NOT TRACEE" in STANDIN.read_text()[:200]


@pytest.mark.slow
def test_lifecycle_ready_via_healthz_metrics_and_sigterm(tmp_path, tracers, monkeypatch, said):
    monkeypatch.setenv("EVT_STANDIN_MODE", "slow_ready=0.6")
    monkeypatch.setenv("EVT_STANDIN_LOST_PER_SCRAPE", "7")
    monkeypatch.setenv("EVT_STANDIN_WRITE_LOST_PER_SCRAPE", "3")
    cfg = standin_cfg(tmp_path, free_port(), "tracee.init_cooldown=200ms", "tracee.extra_args=[--log,debug]")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.check(UNITS)
    tracer.start(UNITS)
    assert tracer.pids() == [tracer.lifecycle.process.pid]
    t0 = time.monotonic()
    tracer.wait_ready()
    assert time.monotonic() - t0 >= 0.3  # it waited for /healthz, not just for the process
    assert tracer.lifecycle.ready and tracer.poll() is None
    run = tmp_path / "run" / "tracer"
    record = json.loads((run / "command.json").read_text())
    assert record["argv"] == tracer.argv and record["argv"][0] == str(STANDIN)
    assert (run / "command.txt").read_text().strip() == record["shell"]
    assert (run / "metrics-start.prom").is_file()
    tracer.drain()
    assert (run / "metrics-end.prom").is_file()
    tracer.stop()
    assert tracer.lifecycle.stop_method == "sigterm"
    assert not tracer.lifecycle.process.running
    report = tracer.report(UNITS)
    assert report.metrics["tracee_events_total"] == 1000  # one scrape apart
    assert report.metrics["tracee_lostevents_total"] == 7
    assert report.lost == {"tracee_lostevents_total": 7, "tracee_write_lostevents_total": 3}
    assert report.lost_total == 10
    assert report.observed is None  # output none: nothing to count
    assert report.cpu_s is not None and report.cpu_s > 0
    assert report.peak_rss_bytes and report.peak_rss_bytes > 1_000_000
    assert report.wall_s and report.wall_s > 0.5
    assert report.command == tracer.argv and report.crashed is None
    log = Path(report.log_path).read_text()
    assert "NOT TRACEE" in log and "'--log', 'debug'" in log and "SIGTERM received" in log
    pid = tracer.lifecycle.pid
    assert f"Tracee started with PID: {pid}" in said() and f"Tracee is ready (PID: {pid})" in said()
    assert "Tracee stopped gracefully" in said()
    lifecycle = json.loads((run / "lifecycle.json").read_text())
    assert lifecycle["stopped_by"] == "sigterm"


@pytest.mark.slow
def test_lifecycle_pre_november_2025_metric_names(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_METRIC_PREFIX", "tracee_ebpf")
    monkeypatch.setenv("EVT_STANDIN_LOST_PER_SCRAPE", "2")
    tracer = new_tracer(tracers, standin_cfg(tmp_path, free_port()), tmp_path)
    tracer.start(UNITS)
    tracer.wait_ready()
    tracer.drain()
    tracer.stop()
    report = tracer.report(UNITS)
    assert report.metrics["tracee_events_total"] == 1000
    assert report.lost["tracee_lostevents_total"] == 2
    assert "tracee_ebpf_" in (tmp_path / "run" / "tracer" / "metrics-end.prom").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("syntax", ["destinations", "legacy"])
def test_lifecycle_json_output_counted_per_unit(tmp_path, tracers, monkeypatch, syntax):
    legacy = [json.loads(line) for line in fixture("events-legacy.jsonl").read_text().splitlines() if line]
    current = json.loads(fixture("events-v1beta1.jsonl").read_text())
    lines = []
    for _ in range(3):  # the unit's native worker: it carries the run's marker comm
        e = dict(legacy[0], containerId=CID_A, processName=UNITS[0].marker.comm)
        lines.append(e)
    e = dict(legacy[1], containerId=CID_A[:12])  # openat: in the container, not the unit's event
    lines.append(e)
    # in the container, the unit's event, but no marker: evt's own start-up opening files
    lines.append(dict(legacy[0], containerId=CID_A, processName="python3"))
    for _ in range(2):
        c = json.loads(json.dumps(current))
        c["name"] = "ptrace"
        c["workload"]["container"] = {"id": CID_B[:12]}
        c["workload"]["process"]["thread"]["name"] = UNITS[1].marker.comm
        lines.append(c)
    source = tmp_path / "emit.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    monkeypatch.setenv("EVT_STANDIN_EVENTS", str(source))
    out = tmp_path / "out" / "events.json"
    cfg = standin_cfg(tmp_path, free_port(), f"tracee.output=json:{out}", f"tracee.output_syntax={syntax}")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    tracer.wait_ready()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(out.read_text().splitlines()) < len(lines):
        time.sleep(0.05)
    tracer.drain()
    tracer.stop()
    report = tracer.report(UNITS)
    assert report.observed == {"security_file_open": 3, "ptrace": 2}
    counts = json.loads((tmp_path / "run" / "tracer" / "event-counts.json").read_text())
    assert counts["events"] == 7 and counts["by_unit"]["security_file_open"]["openat"] == 1
    assert counts["by_unit"]["security_file_open"]["security_file_open"] == 4  # in scope
    assert counts["by_unit_marked"]["security_file_open"]["security_file_open"] == 3  # and marked


@pytest.mark.slow
def test_lifecycle_local_units_counted_by_process_tree(tmp_path, tracers, monkeypatch, procs):
    unit_proc = spawn(procs, ["sh", "-c", "sleep 30 & wait"])
    time.sleep(0.2)
    child = psutil.Process(unit_proc.pid).children()[0].pid
    legacy = json.loads(fixture("events-legacy.jsonl").read_text().splitlines()[0])
    comm = make_unit("security_file_open").marker.comm
    events = [
        dict(legacy, hostProcessId=child, hostParentProcessId=unit_proc.pid, processName=comm),
        dict(legacy, hostProcessId=unit_proc.pid, hostParentProcessId=1, processName=comm),
        dict(legacy, hostProcessId=1, hostParentProcessId=0, processName=comm),
    ]
    source = tmp_path / "emit.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in events))
    monkeypatch.setenv("EVT_STANDIN_EVENTS", str(source))
    out = tmp_path / "events.json"
    units = [make_unit("security_file_open", pid=unit_proc.pid)]
    cfg = standin_cfg(tmp_path, free_port(), "runner=local", f"tracee.output=json:{out}")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(units)
    assert pairs(tracer.argv, "--scope") == [f"tree={unit_proc.pid}"]
    tracer.wait_ready()
    time.sleep(0.3)
    tracer.drain()
    tracer.stop()
    assert tracer.report(units).observed == {"security_file_open": 2}


@pytest.mark.slow
def test_socked_dup_unit_counts_tracees_socket_dup_events(tmp_path, tracers, monkeypatch, procs):
    """evt asks Tracee for socket_dup (the stand-in, like Tracee, refuses socked_dup) and counts
    the socket_dup events it writes for the socked_dup unit."""
    unit_proc = spawn(procs, ["sh", "-c", "sleep 30 & wait"])
    unit = make_unit("socked_dup", pid=unit_proc.pid)
    # the fields evt reads from Tracee's older JSON shape (fixtures/tracee/events-legacy.jsonl)
    event = {
        "hostProcessId": unit_proc.pid,
        "hostParentProcessId": 1,
        "processName": unit.marker.comm,
        "containerId": "",
        "args": [],
    }
    source = tmp_path / "emit.jsonl"
    source.write_text(
        "".join(json.dumps(dict(event, eventName=name)) + "\n" for name in ("socket_dup", "socket_dup", "dup"))
    )
    monkeypatch.setenv("EVT_STANDIN_EVENTS", str(source))
    out = tmp_path / "events.json"
    cfg = standin_cfg(tmp_path, free_port(), "runner=local", f"tracee.output=json:{out}")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start([unit])
    assert pairs(tracer.argv, "--events") == ["socket_dup"]
    tracer.wait_ready()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.05)
    tracer.drain()
    tracer.stop()
    assert tracer.report([unit]).observed == {"socked_dup": 2}


@pytest.mark.slow
def test_lifecycle_crash_at_start(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_MODE", "crash_at_start")
    tracer = new_tracer(tracers, standin_cfg(tmp_path, free_port()), tmp_path)
    tracer.start(UNITS)
    with pytest.raises(RunError) as err:
        tracer.wait_ready()
    msg = str(err.value)
    assert "Tracee exited with code 1 before it was ready; its log " in msg
    assert "tracee.log:\n" in msg and "crash_at_start" in msg
    tracer.stop()
    assert tracer.lifecycle.stop_method == "exited"


@pytest.mark.slow
def test_lifecycle_crash_at_start_without_healthz(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_MODE", "crash_at_start")
    cfg = standin_cfg(tmp_path, free_port(), "tracee.healthz=false", "tracee.start_grace=3s")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    t0 = time.monotonic()
    with pytest.raises(RunError, match=r"exited with code 1 during start-up; its log [\s\S]*crash_at_start"):
        tracer.wait_ready()
    assert time.monotonic() - t0 < 2.5  # noticed the exit, did not sit out the grace period
    tracer.stop()


def test_lifecycle_start_grace_without_healthz(tmp_path, tracers):
    cfg = standin_cfg(tmp_path, free_port(), "tracee.healthz=false", "tracee.metrics=false", "tracee.pprof=false")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    assert "--server" not in tracer.argv
    tracer.wait_ready()
    assert tracer.lifecycle.ready
    tracer.drain()
    tracer.stop()
    report = tracer.report(UNITS)
    assert report.metrics == {} and report.lost == {}
    assert not (tmp_path / "run" / "tracer" / "metrics-start.prom").exists()


@pytest.mark.slow
def test_lifecycle_crash_mid_run(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_MODE", "crash_after=1.0")
    tracer = new_tracer(tracers, standin_cfg(tmp_path, free_port()), tmp_path)
    tracer.start(UNITS)
    tracer.wait_ready()
    assert tracer.poll() is None
    reason = None
    deadline = time.monotonic() + 10
    while reason is None and time.monotonic() < deadline:
        reason = tracer.poll()
        time.sleep(0.05)
    assert reason is not None
    assert "exited with code 2 while the units ran" in reason and "ring buffer poll failed" in reason
    assert tracer.poll() == reason
    tracer.drain()
    tracer.stop()
    assert tracer.lifecycle.stop_method == "exited"
    report = tracer.report(UNITS)
    assert report.crashed == reason
    assert report.cpu_s is not None
    assert report.metrics == {}  # no end scrape from a dead Tracee
    assert (tmp_path / "run" / "tracer" / "metrics-start.prom").is_file()


@pytest.mark.slow
def test_lifecycle_ignores_sigterm_gets_sigkill(tmp_path, tracers, monkeypatch, said):
    monkeypatch.setenv("EVT_STANDIN_MODE", "ignore_sigterm")
    cfg = standin_cfg(tmp_path, free_port(), "tracee.stop_timeout=1s")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    tracer.wait_ready()
    pid = tracer.lifecycle.process.pid
    t0 = time.monotonic()
    tracer.stop()
    assert time.monotonic() - t0 >= 1.0
    assert tracer.lifecycle.stop_method == "sigkill"
    assert tracer.lifecycle.process.returncode == -signal.SIGKILL
    assert gone(pid)
    assert "Tracee did not stop within 1s, sending SIGKILL..." in said()
    assert "SIGTERM received and ignored" in (tmp_path / "run" / "tracer" / "tracee.log").read_text()
    tracer.stop()  # again: nothing happens


@pytest.mark.slow
def test_lifecycle_keep_leaves_it_running(tmp_path, tracers, said):
    cfg = standin_cfg(tmp_path, free_port(), "tracee.keep=true")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    tracer.wait_ready()
    tracer.drain()
    tracer.stop()
    pid = tracer.lifecycle.process.pid
    assert tracer.lifecycle.stop_method == "kept"
    assert tracer.lifecycle.process.running and not gone(pid)
    assert f"Tracee is still running (PID: {pid})" in said()
    assert f"To stop Tracee later, run: sudo kill -TERM {pid}" in said()
    report = tracer.report(UNITS)
    assert report.metrics["tracee_events_total"] == 1000
    reap(pid)  # the test stops what it kept
    tracer.lifecycle.process.proc.wait_exit(5)
    assert gone(pid)


@pytest.mark.slow
def test_lifecycle_keep_does_not_keep_a_failed_start(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_MODE", "never_ready")
    cfg = standin_cfg(tmp_path, free_port(), "tracee.keep=true", "tracee.ready_timeout=500ms")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    with pytest.raises(RunError):
        tracer.wait_ready()
    tracer.stop()
    assert tracer.lifecycle.stop_method == "sigterm" and not tracer.lifecycle.process.running


@pytest.mark.slow
def test_lifecycle_never_ready_deadline(tmp_path, tracers, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_MODE", "never_ready")
    port = free_port()
    cfg = standin_cfg(tmp_path, port, "tracee.ready_timeout=1s")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.start(UNITS)
    t0 = time.monotonic()
    with pytest.raises(RunError) as err:
        tracer.wait_ready()
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 5
    msg = str(err.value)
    assert f"Tracee did not become ready within 1s: http://127.0.0.1:{port}/healthz never answered 200" in msg
    # main opens its HTTP server only once ready: until then the connection is refused
    assert "Connection refused" in msg and "tracee.ready_timeout" in msg
    assert tracer.poll() is None  # alive but not ready: stop() ends it
    tracer.stop()
    assert not tracer.lifecycle.process.running


def test_lifecycle_stop_before_start_and_twice(tmp_path, tracers):
    tracer = new_tracer(tracers, standin_cfg(tmp_path, free_port()), tmp_path)
    tracer.stop()
    tracer.stop()
    assert tracer.poll() is None


def test_lifecycle_start_refuses_units_without_ids(tmp_path, tracers):
    tracer = new_tracer(tracers, standin_cfg(tmp_path, free_port()), tmp_path)
    with pytest.raises(RunError, match="no container id or pid for: security_file_open"):
        tracer.start([make_unit("security_file_open")])
    assert tracer.pids() == []


def test_lifecycle_unstartable_binary(tmp_path, tracers):
    bad = tmp_path / "tracee"
    bad.write_bytes(b"\x00\x01not an executable format")
    bad.chmod(0o755)
    cfg = standin_cfg(tmp_path, free_port(), f"tracee.binary={bad}")
    tracer = new_tracer(tracers, cfg, tmp_path)
    with pytest.raises(RunError, match="could not start Tracee"):
        tracer.start(UNITS)


def test_manual_mode_scrapes_the_users_tracee(tmp_path, tracers, procs, said):
    port = free_port()
    env = dict(os.environ, EVT_STANDIN_LOST_PER_SCRAPE="5")
    user = spawn(procs, [str(STANDIN), "--server", "metrics", "--server", f"http-address=127.0.0.1:{port}"], env=env)
    cfg = standin_cfg(tmp_path, port, "tracee.auto=false")
    tracer = new_tracer(tracers, cfg, tmp_path)
    tracer.check(UNITS)
    tracer.start(UNITS)
    assert tracer.pids() == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the user's Tracee comes up
        try:
            import urllib.request

            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{port}/healthz", timeout=1
            )
        except Exception as exc:  # 404 means it listens (healthz is off)
            if getattr(exc, "code", None) == 404:
                break
            time.sleep(0.05)
    tracer.wait_ready()
    tracer.drain()
    tracer.stop()
    assert tracer.lifecycle.stop_method == "manual"
    assert "Tracee was manually started by you." in said()
    assert user.poll() is None  # evt leaves the user's Tracee alone
    report = tracer.report(UNITS)
    assert report.lost["tracee_lostevents_total"] == 5


def test_pyroscope_notice_says_the_link_or_that_nothing_answers(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from evt.tracers.tracee import metrics as tracee_metrics

    monkeypatch.setattr(tracee_metrics, "PYROSCOPE_SERVER", f"http://127.0.0.1:{free_port()}")
    notice = tracee_metrics.pyroscope_notice()
    assert notice.startswith("Warning: Pyroscope does not answer at http://127.0.0.1:")
    assert tracee_metrics.PYROSCOPE_UI in notice

    class Quiet(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(tracee_metrics, "PYROSCOPE_SERVER", f"http://127.0.0.1:{server.server_address[1]}")
        assert tracee_metrics.pyroscope_notice() == f"Pyroscope UI: {tracee_metrics.PYROSCOPE_UI}"
    finally:
        server.shutdown()
