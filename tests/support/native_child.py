"""Running native trigger actions (evt/workload/actions) for real in a forked child (they
rename the process, seize children, change namespaces: not the test runner's). Shared by
the unit tests of the unprivileged actions and the integration tests of those that need a
capability."""

from __future__ import annotations

import os
import pickle
import traceback

import pytest

from evt.workload import actions as native
from evt.workload.catalog import default_catalog
from evt.workload.marker import Marker


def privileged_actions() -> set[str]:
    """The native actions whose trigger needs a capability (as the catalog states it)."""
    return {
        mode.action
        for trig in default_catalog().values()
        for mode in trig.modes.values()
        if mode.name == "native" and mode.action and trig.mode_needs("native").capabilities
    }


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


def fd_count(act) -> int:
    return len(os.listdir("/proc/self/fd"))
