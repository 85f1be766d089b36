"""Tracee main vs v0.24.x (evt/tracers/tracee/flavour.py) and what it changes: the buffer
and output flags, the pidfile check, readiness. Against tests/support/tracee_standin.py, which is
NOT Tracee: it imitates both flavours' interfaces as docs/tracee.md describes them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evt.errors import RunError, UsageError
from evt.tracers.tracee.command import render_command
from evt.tracers.tracee.flavour import Flavour, detect, flavour_of_version
from evt.tracers.tracee.metrics import TraceeServer
from evt.tracers.tracee.tracer import TraceeTracer
from helpers import STANDIN, build_tracer, compose_cfg, free_port, make_unit, reap, run_evt, standin_cfg

BIN = "/opt/tracee/dist/tracee"
CID = "c3" * 32
UNITS = [make_unit("security_file_open", container_id=CID), make_unit("ptrace", container_id=CID)]


def render(flavour: str, *overrides: str, **updates) -> list[str]:
    cfg = compose_cfg("tracer=tracee", f"tracee.binary={BIN}", *overrides, **updates)
    return render_command(cfg.tracee, UNITS, Path("/run/evt"), Flavour(flavour), runner=str(cfg.runner.name))


def after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


# ------------------------------------------------------------------ flavour


@pytest.mark.parametrize(
    "said, flavour",
    [
        ("Tracee version: v0.24.1", "v0.24"),
        ("Tracee version: v0.23.0", "v0.24"),
        ("Tracee version: v0.24.1-215-g7c9ec9788", "main"),  # a build past the tag
        ("Tracee version: v0.25.0", "main"),
        ("Tracee version: dev", "main"),
        ("", "main"),
        ("Tracee version: v0.24.1 stand-in (NOT TRACEE)", "v0.24"),  # the first word is the version
    ],
)
def test_flavour_of_what_tracee_version_says(said, flavour):
    assert flavour_of_version(said) == flavour


@pytest.mark.parametrize("standin, expected", [("main", "main"), ("v0.24", "v0.24")])
def test_auto_asks_the_binary(monkeypatch, standin, expected):
    monkeypatch.setenv("EVT_STANDIN_FLAVOUR", standin)
    found = detect("auto", str(STANDIN))
    assert found.name == expected and found.version.startswith("Tracee version: v0.24.1")
    assert detect("v0.24", "/nonexistent").legacy and detect("auto", "/nonexistent") == Flavour("main")


def test_unknown_flavour_is_refused():
    with pytest.raises(UsageError, match=r"invalid tracee.flavour 'v1'.*auto.*main.*v0.24"):
        detect("v1", BIN)


# ------------------------------------------------------------------ buffers and output


def test_buffers_render_one_key_value_per_flag_on_main():
    argv = render(
        "main",
        "tracee.buffers.kernel_events=2048",
        "tracee.buffers.kernel_artifacts=512",
        "tracee.buffers.kernel_control_plane=64",
        "tracee.buffers.pipeline=5000",
    )
    assert after(argv, "--buffers") == [
        "kernel.events=2048",
        "kernel.artifacts=512",
        "kernel.control-plane=64",
        "pipeline=5000",
    ]
    assert "--perf-buffer-size" not in argv and "--buffers" not in render("main")


def test_buffers_render_the_older_flags_on_v024():
    argv = render(
        "v0.24",
        "tracee.buffers.kernel_events=2048",
        "tracee.buffers.kernel_artifacts=512",
        "tracee.buffers.pipeline=5000",
    )
    assert after(argv, "--perf-buffer-size") == ["2048"] and after(argv, "--blob-perf-buffer-size") == ["512"]
    assert after(argv, "--pipeline-channel-size") == ["5000"] and "--buffers" not in argv
    with pytest.raises(UsageError, match=r"tracee\.buffers\.kernel_control_plane=64 has no flag in Tracee v0\.24\.x"):
        render("v0.24", "tracee.buffers.kernel_control_plane=64")


@pytest.mark.parametrize("value", [0, -4])
def test_buffer_sizes_must_be_positive(value):
    with pytest.raises(UsageError, match=f"invalid tracee.buffers.kernel_events {value}: give a positive whole"):
        render("main", f"tracee.buffers.kernel_events={value}")


def test_a_buffer_size_that_is_not_an_integer_exits_2_naming_it(tmp_path):
    result = run_evt("stress", "-e", "ptrace", "tracee.buffers.pipeline=lots", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "tracee.buffers.pipeline" in result.stderr and "lots" in result.stderr
    assert not (tmp_path / "tracer").exists()


def test_output_syntax_auto_follows_the_flavour():
    assert after(render("main", "tracee.output=json:/d/e.json"), "--output")[0] == "destinations.evt.type=file"
    assert after(render("v0.24", "tracee.output=json:/d/e.json"), "--output") == ["json:/d/e.json"]


def test_streams_output_declares_evts_stream():
    argv = render(
        "main",
        "tracee.output=json:/d/e.json",
        "tracee.output_syntax=streams",
        "tracee.stream.buffer_size=4096",
        "tracee.stream.buffer_mode=drop",
    )
    assert after(argv, "--output") == [
        "destinations.evt.type=file",
        "destinations.evt.format=json",
        "destinations.evt.path=/d/e.json",
        "streams.evt.destinations=evt",
        "streams.evt.buffer.mode=drop",
        "streams.evt.buffer.size=4096",
    ]


@pytest.mark.parametrize(
    "flavour, overrides, message",
    [
        ("main", ["tracee.output_syntax=streams"], "tracee.output_syntax=streams declares a stream"),
        (
            "main",
            ["tracee.output=json", "tracee.output_syntax=streams", "tracee.stream.buffer_mode=fast"],
            "invalid tracee.stream.buffer_mode 'fast': use block or drop",
        ),
        (
            "main",
            ["tracee.output=json", "tracee.output_syntax=streams", "tracee.stream.buffer_size=-1"],
            "invalid tracee.stream.buffer_size -1",
        ),
        ("main", ["tracee.output_syntax=xml"], "invalid tracee.output_syntax 'xml'"),
        ("v0.24", ["tracee.output=json", "tracee.output_syntax=streams"], "needs Tracee's main branch"),
        ("v0.24", ["tracee.output=json", "tracee.output_syntax=destinations"], "needs Tracee's main branch"),
    ],
)
def test_bad_output_settings_are_refused(flavour, overrides, message):
    with pytest.raises(UsageError, match=message):
        render(flavour, *overrides)


# ------------------------------------------------------------------ the stand-in refuses what Tracee refuses


def standin(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, str(STANDIN), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, EVT_STANDIN_MAX_LIFETIME="1", **(env or {})),
    )


@pytest.mark.parametrize(
    "args, env, refusal",
    [
        (["--events", "socked_dup"], {}, "invalid event to trace: socked_dup"),  # Tracee's event is socket_dup
        (["--events", "ptrace", "--perf-buffer-size", "1024"], {}, "unknown flag: --perf-buffer-size"),
        (["--events", "ptrace", "--buffers", "kernel.events=0"], {}, "value can't be negative or zero"),
        (["--events", "ptrace", "--buffers", "kernel.events=1,pipeline=2"], {}, "invalid buffers flag"),
        (
            ["--events", "ptrace", "--buffers", "kernel.events=1024"],
            {"EVT_STANDIN_FLAVOUR": "v0.24"},
            "unknown flag: --buffers",
        ),
        (
            ["--events", "ptrace", "--output", "destinations.x.path=/tmp/x"],
            {"EVT_STANDIN_FLAVOUR": "v0.24"},
            "invalid output flag",
        ),
        (["--events", "ptrace", "--server", "grpc"], {}, "invalid server flag: 'grpc'"),
    ],
)
def test_the_standin_refuses_what_tracee_refuses(args, env, refusal):
    done = standin(*args, env=env)
    assert done.returncode == 1 and refusal in done.stderr


@pytest.mark.slow
def test_the_standin_runs_what_tracee_accepts():
    """The other side of the refusals above: valid flags start it and it exits 0."""
    assert standin("--events", "socket_dup,ptrace", "--output", "none").returncode == 0


def test_a_flavour_mismatch_fails_the_start_with_traces_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_FLAVOUR", "v0.24")  # a v0.24 binary, evt told it is main
    cfg = standin_cfg(tmp_path, free_port(), "tracee.flavour=main", "tracee.buffers.kernel_events=2048")
    tracer = build_tracer(TraceeTracer, cfg, tmp_path / "run")
    try:
        tracer.start(UNITS)
        with pytest.raises(RunError, match="unknown flag: --buffers"):
            tracer.wait_ready()
    finally:
        tracer.stop()


# ------------------------------------------------------------------ readiness and the HTTP address


@pytest.mark.slow
def test_main_healthz_goes_refused_then_503_then_200(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("EVT_STANDIN_HEARTBEAT", "1.0")
    monkeypatch.setenv("EVT_STANDIN_MODE", "slow_ready=0.5")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STANDIN),
            "--events",
            "ptrace",
            "--server",
            "healthz",
            "--server",
            f"http-address=127.0.0.1:{port}",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = TraceeServer(f"http://127.0.0.1:{port}", tmp_path)
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = server.not_healthy()
            kind = (
                "ok"
                if answer is None
                else (
                    "503"
                    if answer.startswith("HTTP 503 'NOT OK'")
                    else "refused"
                    if "refused" in answer.lower()
                    else answer
                )
            )
            if not seen or seen[-1] != kind:
                seen.append(kind)
            if kind == "ok":
                break
            time.sleep(0.05)
        assert seen == ["refused", "503", "ok"]
    finally:
        reap(proc.pid)


@pytest.mark.slow
def test_v024_readiness_reads_the_body_of_a_200(tmp_path, monkeypatch):
    monkeypatch.setenv("EVT_STANDIN_FLAVOUR", "v0.24")
    monkeypatch.setenv("EVT_STANDIN_HEARTBEAT", "1.5")  # 200 `NOT OK` for 1.5 s after start
    cfg = standin_cfg(tmp_path, free_port(), "tracee.output=json")
    tracer = build_tracer(TraceeTracer, cfg, tmp_path / "run")
    assert tracer.flavour.name == "v0.24"
    try:
        tracer.start(UNITS)
        assert "json:" in " ".join(tracer.argv) and "--buffers" not in tracer.argv
        tracer.wait_ready()
        assert tracer.lifecycle.ready_s >= 1.5  # a status-only check would have said ready at once
        assert tracer.server.not_healthy() is None
    finally:
        tracer.stop()


def test_an_http_address_in_use_is_refused_before_start(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cfg = standin_cfg(tmp_path, port)
        with pytest.raises(UsageError) as err:
            build_tracer(TraceeTracer, cfg, tmp_path / "run").check(UNITS)
        assert f"Tracee's HTTP address 127.0.0.1:{port} is already in use" in str(err.value)
        assert "tracee.http_address=127.0.0.1:<port>" in str(err.value)
        build_tracer(
            TraceeTracer,
            standin_cfg(tmp_path, port, "tracee.metrics=false", "tracee.healthz=false", "tracee.pprof=false"),
            tmp_path / "run2",
        ).check(UNITS)  # no HTTP: no check


@pytest.mark.slow
def test_the_standin_runs_on_without_http_when_its_port_is_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = standin("--events", "ptrace", "--server", "healthz", "--server", f"http-address=127.0.0.1:{port}")
    assert done.returncode == 0  # ran to its max lifetime
    assert "HTTP server error" in done.stderr and "MAX_LIFETIME" in done.stderr
