"""Native trigger actions (evt/workload/actions/__init__.py), run for real in a forked child each
(they rename the process, seize children, change namespaces: not the test runner's)."""

from __future__ import annotations

import os
import pickle
import shutil
import time
import traceback
import uuid

import pytest

from evt.workload import actions as native
from evt.workload.catalog import default_catalog
from evt.workload.marker import Marker


def in_child(fn):
    """Run fn() in a forked child; return its result or re-raise its failure here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            payload = ("ok", fn())
        except BaseException as exc:
            payload = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        with os.fdopen(w, "wb") as f:
            pickle.dump(payload, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "error":
        pytest.fail(f"in child: {value}")
    return value


@pytest.fixture
def marker():
    m = Marker.for_run(uuid.uuid4().hex, "test")
    yield m
    shutil.rmtree(m.dir, ignore_errors=True)


def run_action(name: str, marker: Marker, ops: int, probe=None):
    def body():
        act = native.ACTIONS[name](marker)
        act.setup()
        for _ in range(ops):
            act.op()
        seen = probe(act) if probe else None
        act.close()
        return seen
    return in_child(body)


def test_every_catalog_action_is_registered():
    used = {m.action for t in default_catalog().values() for m in t.modes.values() if m.name == "native"}
    assert used <= set(native.ACTIONS)
    assert set(native.ACTIONS) - used == set(), "an action no trigger uses"


@pytest.mark.parametrize("name", sorted(native.ACTIONS))
def test_action_runs_ops_without_error(name, marker):
    run_action(name, marker, 50)
    assert os.path.isdir(marker.dir)


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        native.action("file_open")(native.Action)


def test_set_comm_cuts_to_15_chars():
    def body():
        native.set_comm("evt-0123456789abcdef")
        return native.get_comm()
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
            tracer = [line for line in f if line.startswith("TracerPid:")][0].split()[1]
        return act.child, int(tracer), os.getpid()
    child, tracer, worker = run_action("ptrace", marker, 5, probe)
    assert tracer == worker
    assert not os.path.exists(f"/proc/{child}")


def test_socket_connect_targets_the_marker_port(marker):
    def probe(act):
        return act.sock.getpeername()
    assert run_action("socket_connect", marker, 3, probe) == ("127.0.0.1", marker.port)


def test_unshare_uts_moves_the_worker_to_a_new_uts_namespace(marker):
    before = os.readlink("/proc/self/ns/uts")
    after = run_action("unshare_uts", marker, 2, lambda act: os.readlink("/proc/self/ns/uts"))
    assert after != before
    assert os.readlink("/proc/self/ns/uts") == before  # the test runner stayed where it was


def test_inotify_watch_holds_a_watch_on_the_marker_dir(marker):
    def probe(act):
        with open(f"/proc/self/fdinfo/{act.fd}") as f:
            return sum(1 for line in f if line.startswith("inotify wd:"))
    assert run_action("inotify_watch", marker, 5, probe) == 1  # re-adding the same path updates one watch


@pytest.mark.parametrize("name", ["bpf_prog_load", "file_open", "socket_create", "socket_bind", "magic_write"])
def test_ops_leak_no_file_descriptors(name, marker):
    def fds(act):
        return len(os.listdir("/proc/self/fd"))
    assert run_action(name, marker, 1, fds) == run_action(name, marker, 30, fds)


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
