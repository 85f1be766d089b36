"""`evt verify --kernel`: the whole catalog in a VM on a stock Debian kernel (qemu), against
the verdicts the trigger files record, and a VM that leaves nothing behind however evt ends.

The first test builds the VM image when the cache (~/.cache/evt) is empty: several minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from evt.workload.catalog import load_catalog
from helpers import EVT, run_evt

pytestmark = [pytest.mark.integration, pytest.mark.long]  # a VM under TCG: minutes
KERNEL = "debian-6.1"
KPROBE_ONLY = ("bpf_attach", "kallsyms_lookup_name", "kprobe_attach")
BOOT_DEADLINE_S = 1800  # a cold cache builds the image first


@pytest.fixture(autouse=True)
def _needs_qemu_and_root():
    if os.geteuid() != 0 or not any(Path(p, "qemu-system-x86_64").exists() for p in os.environ["PATH"].split(":")):
        pytest.skip("needs root and qemu-system-x86_64 (`make setup` installs it)")


def _qemus_of(run_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("qemu-system-x86_64") and any(str(run_dir) in arg for arg in cmdline):
            found.append(proc)
    return found


def test_the_whole_catalog_in_a_vm_keeps_its_recorded_verdicts(tmp_path):
    out = tmp_path / "run"
    done = run_evt("verify", "--kernel", KERNEL, "--check", "-o", str(out), timeout=BOOT_DEADLINE_S + 1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every verdict is the one recorded" in done.stdout
    frame = pd.read_csv(out / "verify.csv")
    expected = {(e, m) for e, t in load_catalog().items() for m in t.modes}
    assert set(zip(frame["event"], frame["mode"], strict=True)) == expected
    assert frame["verdict"].notna().all()
    kprobe_only = frame[frame["event"].isin(KPROBE_ONLY)]
    assert len(kprobe_only) == 3 and (kprobe_only["verdict"] != "cannot_run").all(), kprobe_only
    assert json.loads((out / "verify.json").read_text())["kernels"][0]["release"].startswith("6.1.")
    assert not _qemus_of(out)


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path, dict]:
    """evt verify with one trigger, until its VM runs: (evt, run dir, the qemu entry of its run state)."""
    out, state = tmp_path / "run", tmp_path / "state"
    env = dict(os.environ, EVT_STATE_DIR=str(state))
    proc = subprocess.Popen(
        # enough ops to keep the VM busy well past the signal: a run that ends first answers 0
        [EVT, "verify", "--kernel", KERNEL, "-e", "security_file_open", "--ops", "2000000", "-o", str(out)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + BOOT_DEADLINE_S
    while time.monotonic() < deadline and proc.poll() is None:
        for path in state.glob("*.json"):
            qemu = [p for p in json.loads(path.read_text()).get("processes", []) if p["role"] == "qemu"]
            if qemu and (out / "vm-console.log").exists():
                return proc, out, qemu[0]
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the VM did not start: {proc.communicate()}")


def _gone(pid: int, deadline_s: float = 30) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_the_vm(tmp_path):
    proc, out, qemu = _start(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _gone(qemu["pid"]) and not _qemus_of(out)
    assert not list((tmp_path / "state").glob("*.json"))  # the run's record went with it


def test_kill_9_then_cleanup_leaves_no_vm(tmp_path):
    proc, out, qemu = _start(tmp_path)
    proc.kill()
    proc.wait()
    done = run_evt("cleanup", env={"EVT_STATE_DIR": str(tmp_path / "state")}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _gone(qemu["pid"]) and not _qemus_of(out)
    assert not list((tmp_path / "state").glob("*.json"))
