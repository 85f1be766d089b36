"""The native trigger actions whose trigger needs a capability (loading a BPF program, a new
UTS namespace), run for real in a forked child as tests/unit/test_native.py runs the others."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from evt.workload.marker import Marker
from native_child import fd_count, privileged_actions, run_action

pytestmark = pytest.mark.integration


@pytest.fixture
def marker():
    m = Marker.for_run(uuid.uuid4().hex, "test")
    yield m
    shutil.rmtree(m.dir, ignore_errors=True)


def test_the_privileged_actions_are_the_bpf_and_namespace_ones():
    assert privileged_actions() == {"bpf_prog_load", "unshare_uts"}


@pytest.mark.parametrize("name", sorted(privileged_actions()))
def test_action_runs_ops_without_error(name, marker):
    run_action(name, marker, 50)
    assert os.path.isdir(marker.dir)


def test_unshare_uts_moves_the_worker_to_a_new_uts_namespace(marker):
    before = os.readlink("/proc/self/ns/uts")
    after = run_action("unshare_uts", marker, 2, lambda act: os.readlink("/proc/self/ns/uts"))
    assert after != before
    assert os.readlink("/proc/self/ns/uts") == before  # the test runner stayed where it was


def test_bpf_prog_load_leaks_no_file_descriptors(marker):
    assert run_action("bpf_prog_load", marker, 1, fd_count) == run_action("bpf_prog_load", marker, 30, fd_count)
