"""Native trigger actions (evt/workload/actions/__init__.py), run for real in a forked child each
(they rename the process, seize children, change namespaces: not the test runner's). Those
whose trigger needs a capability run in tests/integration/test_native_privileged.py."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

from evt import linux
from evt.workload import actions as native
from evt.workload.actions import fs
from evt.workload.catalog import default_catalog
from evt.workload.marker import Marker
from native_child import fd_count, in_child, privileged_actions, run_action


@pytest.fixture
def marker():
    m = Marker.for_run(uuid.uuid4().hex, "test")
    yield m
    shutil.rmtree(m.dir, ignore_errors=True)


def test_every_catalog_action_is_registered():
    used = {m.action for t in default_catalog().values() for m in t.modes.values() if m.name == "native"}
    assert used <= set(native.ACTIONS)
    assert set(native.ACTIONS) - used == set(), "an action no trigger uses"


@pytest.mark.parametrize("name", sorted(set(native.ACTIONS) - privileged_actions()))
def test_action_runs_ops_without_error(name, marker):
    run_action(name, marker, 50)
    assert os.path.isdir(marker.dir)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        native.registry(fs, fs)


def test_set_comm_cuts_to_15_chars():
    def body():
        linux.set_comm("evt-0123456789abcdef")
        return linux.get_comm()

    assert in_child(body) == "evt-0123456789a"


def test_file_open_creates_and_opens_the_marker_file(marker):
    run_action("file_open", marker, 3)
    assert os.path.isfile(marker.file)


def test_file_open_fails_when_the_file_goes(marker):
    def body():
        act = native.ACTIONS["file_open"](marker)
        act.setup()
        os.unlink(marker.file)
        try:
            act.op()
        except FileNotFoundError:
            return "raised"
        return "no error"

    assert in_child(body) == "raised"


def test_symlink_and_unlink_leave_nothing_behind(marker):
    run_action("symlink", marker, 10)
    run_action("unlink", marker, 10)
    assert [n for n in os.listdir(marker.dir) if n.startswith("link-")] == []


def test_magic_write_writes_an_elf_magic(marker):
    run_action("magic_write", marker, 5)
    (name,) = [n for n in os.listdir(marker.dir) if n.startswith("magic-")]
    with open(os.path.join(marker.dir, name), "rb") as f:
        assert f.read() == b"\x7fELF"


def test_truncate_empties_its_file(marker):
    def probe(act):
        os.write(act.fd, b"data")
        act.op()
        return os.fstat(act.fd).st_size

    assert run_action("truncate", marker, 1, probe) == 0


def test_exec_runs_true_through_the_marker_symlink(marker):
    run_action("exec", marker, 3)
    assert os.path.islink(marker.exe)
    assert os.path.basename(os.readlink(marker.exe)) == "true"


def test_ptrace_seizes_a_child_and_close_reaps_it(marker):
    def probe(act):
        with open(f"/proc/{act.child}/status") as f:
            tracer = next(line for line in f if line.startswith("TracerPid:")).split()[1]
        return act.child, int(tracer), os.getpid()

    child, tracer, worker = run_action("ptrace", marker, 5, probe)
    assert tracer == worker
    assert not os.path.exists(f"/proc/{child}")


def test_socket_connect_targets_the_marker_port(marker):
    def probe(act):
        return act.sock.getpeername()

    assert run_action("socket_connect", marker, 3, probe) == ("127.0.0.1", marker.port)


def test_inotify_watch_holds_a_watch_on_the_marker_dir(marker):
    def probe(act):
        with open(f"/proc/self/fdinfo/{act.fd}") as f:
            return sum(1 for line in f if line.startswith("inotify wd:"))

    assert run_action("inotify_watch", marker, 5, probe) == 1  # re-adding the same path updates one watch


@pytest.mark.parametrize("name", ["file_open", "socket_create", "socket_bind", "magic_write"])
def test_ops_leak_no_file_descriptors(name, marker):
    assert run_action(name, marker, 1, fd_count) == run_action(name, marker, 30, fd_count)


@pytest.mark.slow
def test_ptrace_child_dies_with_a_killed_worker(marker):
    """A worker killed before close() (a gate timeout, Ctrl+C) must not leave its tracee
    behind: it would hold the trigger's output pipe open forever."""

    def body():
        act = native.ACTIONS["ptrace"](marker)
        act.setup()
        return act.child

    child = in_child(body)  # the worker exits without close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{child}")
