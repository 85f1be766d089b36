"""One boot of the checker's VM: qemu with the stock kernel and evt's initramfs, no network,
the console on the first serial port (vm-console.log) and the checker's records on the
second (vm-results.jsonl); the guest powers itself off when done.

qemu is a process evt started like any other: its own session, killed if evt dies
(PR_SET_PDEATHSIG), recorded in the run's state for `evt cleanup`, stopped on Ctrl+C and
on a deadline. Nothing is mounted on the host: the VM's disk is its initramfs, in memory.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from evt.errors import RunError, UsageError
from evt.procs import ManagedProcess, exit_text
from evt.stress import runstate
from evt.verify.guest import ARGS_ENV, encode_args
from evt.verify.kernels import Kernel

QEMU = "qemu-system-x86_64"
MEMORY_MB = 2048  # the initramfs (~430 MiB) is unpacked into RAM next to its archive
CPUS = 2
STOP_TIMEOUT_S = 5.0


def qemu_argv(kernel: Kernel, initrd: Path, run_dir: Path, request: dict, accel: str) -> list[str]:
    cmdline = f"console=ttyS0 panic=-1 quiet {ARGS_ENV}={encode_args(request)}"
    if len(cmdline) > 2000:  # x86's COMMAND_LINE_SIZE is 2048
        raise UsageError(
            "too many --event values for one VM's kernel command line: give fewer, or none for the whole catalog."
        )
    return [
        QEMU,
        "-machine",
        "q35",
        "-accel",
        accel,
        "-cpu",
        "max" if accel == "tcg" else "host",
        "-m",
        str(MEMORY_MB),
        "-smp",
        str(CPUS),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        cmdline,
        "-serial",
        f"file:{run_dir / 'vm-console.log'}",
        "-serial",
        f"file:{run_dir / 'vm-results.jsonl'}",
    ]


def check_qemu() -> None:
    if not shutil.which(QEMU):
        raise UsageError(
            f"{QEMU} is not installed: `evt verify --kernel` boots a VM with it; run `make setup` "
            "(or apt-get install qemu-system-x86)."
        )


def read_records(path: Path) -> list[dict]:
    """The guest's JSON lines so far (a serial line may carry a carriage return)."""
    records: list[dict] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        line = line.strip("\r\n\x00 ")
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed VM
    return records


def boot(
    kernel: Kernel,
    initrd: Path,
    run_dir: Path,
    request: dict,
    run_id: str,
    accel: str,
    timeout_s: float,
    on_record: Callable[[dict], None],
) -> list[dict]:
    """Boot, hand each new record to `on_record` as it arrives, and return them all once the
    VM has powered off. RunError when it fails, hangs past `timeout_s` or ends without
    finishing; the VM is gone when this returns or raises."""
    argv = qemu_argv(kernel, initrd, run_dir, request, accel)
    (run_dir / "vm-command.txt").write_text(" ".join(argv) + "\n")
    results = run_dir / "vm-results.jsonl"
    proc = ManagedProcess(argv, run_dir / "qemu.log")
    runstate.add_process(run_id, proc.pid, "qemu")
    seen = 0
    deadline = time.monotonic() + timeout_s
    try:
        while proc.running and time.monotonic() < deadline:
            time.sleep(0.5)
            records = read_records(results)
            for record in records[seen:]:
                on_record(record)
            seen = len(records)
        if proc.running:
            raise RunError(
                f"the VM did not finish within {timeout_s:.0f} s (raise --timeout); its console: "
                f"{run_dir / 'vm-console.log'}"
            )
    finally:
        proc.stop(STOP_TIMEOUT_S, signal.SIGTERM)
    records = read_records(results)
    for record in records[seen:]:
        on_record(record)
    errors = [r for r in records if r.get("type") == "error"]
    if errors:
        raise RunError(f"the checker failed in the VM: {errors[0]['error']} (console: {run_dir / 'vm-console.log'})")
    if not any(r.get("type") == "done" for r in records):
        raise RunError(
            f"the VM {exit_text(proc.returncode)} before the checker finished; "
            f"its console: {run_dir / 'vm-console.log'}, qemu's log: {run_dir / 'qemu.log'}"
        )
    return records
