"""The checker: every trigger, in each of its modes, run twice (n and 2n ops) under one
bpftrace program that counts, per run, the events at the trigger's Tracee hook and at its
ground-truth probe, both in the run's own process tree only.

Runs wherever the kernel has kprobes and evt runs as root: in the VM (evt/verify/guest.py)
or on such a host. A run's root task is a fork of the checker that announces its phase
number with a prctl(2) option no kernel knows (it fails with EINVAL); the program follows
forks from there (templates/verify.bt.j2). The per-op figure is the difference between the
two runs divided by the difference in ops, so the fixed cost of a run (forking its worker,
rendering its script) cancels out. Yields one plain dict per case: the host computes the
verdicts (evt/verify/results.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evt import host
from evt.config.templating import render
from evt.procs import dies_with
from evt.verify.recorded import TraceeHook
from evt.workload import trigger
from evt.workload.catalog import Trigger
from evt.workload.marker import Marker, Target
from evt.workload.pacing import Pacing

PHASE_PRCTL = 0x45565456  # "EVTV": no prctl(2) option; the call fails with EINVAL and only marks the task
ATTACHED = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"  # bpftrace prints this once every probe is attached
DEFAULT_OPS = {"native": 5, "script": 1}  # ops of a case's first run; the second runs twice as many
ATTACH_TIMEOUT_S = 600.0  # a program of ~80 probes under software emulation attaches in about a minute
MAP_KEYS_MAX = "131072"  # every task of every run stays in the phase map


@dataclass
class Case:
    event: str
    mode: str
    trigger: Trigger
    hook: TraceeHook | None
    target: Target  # the ground truth, rendered for this case's marker
    marker: Marker
    ops: tuple[int, int]
    phases: tuple[int, int]
    unrunnable: str = ""  # why it cannot run here; empty when it can
    hook_missing: str = ""  # why the hook cannot be attached here
    target_missing: str = ""


def missing_probe(probe: str) -> str | None:
    """None when bpftrace can attach the probe on this kernel, else why not."""
    kind, _, rest = probe.partition(":")
    if kind in ("tracepoint", "rawtracepoint"):
        category, _, name = rest.rpartition(":")
        matches = list((host.TRACEFS / "events").glob(f"{category or '*'}/{name}"))
        return None if matches else f"no tracepoint {rest} in this kernel"
    if kind in ("kprobe", "kretprobe"):
        missing = host.check_kernel_feature("kprobes")
        if missing:
            return missing
        return (
            None if rest in attachable_functions() else f"{rest} is not a function kprobes can attach to in this kernel"
        )
    return f"unknown probe type {kind!r}"


_FUNCTIONS: set[str] = set()


def attachable_functions() -> set[str]:
    if not _FUNCTIONS:
        with open(host.TRACEFS / "available_filter_functions") as f:
            _FUNCTIONS.update(line.split(" ", 1)[0].strip() for line in f)
    return _FUNCTIONS


def plan(triggers: list[Trigger], modes: tuple[str, ...] | None, ops: int | None, run_id: str) -> list[Case]:
    """A case per trigger and mode, with its two phases and what stops it running here."""
    cases: list[Case] = []
    for trig in triggers:
        for mode in trig.modes:
            if modes and mode not in modes:
                continue
            n = ops or DEFAULT_OPS[mode]
            phase = 2 * len(cases) + 1
            marker = Marker.for_run(run_id, f"{trig.event}-{mode}")
            case = Case(
                trig.event,
                mode,
                trig,
                trig.tracee_hook,
                trig.mode(mode).target.rendered(trig.event, marker),
                marker,
                (n, 2 * n),
                (phase, phase + 1),
            )
            case.unrunnable = "; ".join(trig.unmet(mode))
            if case.hook is None:
                case.hook_missing = "the trigger names no tracee_hook"
            else:
                case.hook_missing = "; ".join(filter(None, (missing_probe(p) for p in case.hook.probes)))
            case.target_missing = "; ".join(
                filter(None, (missing_probe(p.strip()) for p in case.target.probe.split(",")))
            )
            cases.append(case)
    return cases


def program(cases: list[Case]) -> str:
    """The counting program: one block per distinct probe list, a check per case in it."""
    blocks: dict[str, list[dict]] = {}
    preludes: list[str] = []
    for case in cases:
        if case.unrunnable:
            continue
        if case.hook and not case.hook_missing:
            for probe, flt in case.hook.blocks():
                blocks.setdefault(probe, []).append(
                    {"phases": case.phases, "filter": flt, "slot": 0, "label": f"{case.event} {case.mode}: hook"}
                )
            if case.hook.prelude and case.hook.prelude not in preludes:
                preludes.append(case.hook.prelude)
        if not case.target_missing:
            blocks.setdefault(case.target.probe, []).append(
                {
                    "phases": case.phases,
                    "filter": case.target.filter,
                    "slot": 1,
                    "label": f"{case.event} {case.mode}: ground truth",
                }
            )
    rows = [{"probe": probe, "checks": checks} for probe, checks in blocks.items()]
    return render("verify.bt.j2", magic=PHASE_PRCTL, preludes=preludes, blocks=rows)


def _run_phase(case: Case, ops: int, phase: int) -> dict:
    """Fork a root task for this phase; it marks itself and runs the trigger's ops."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked root task; reports on the pipe
        os.close(read_end)
        code = 0
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PHASE_PRCTL, phase, 0, 0, 0)
            with open(os.devnull, "w") as quiet:
                out = trigger.Output(case.event, prefixed=False, stream=quiet)
                result = trigger.run(case.trigger, case.mode, ops, 1, Pacing(), case.marker, out=out)
            first = next((w.first_error for w in result.per_worker if w.first_error), None)
            report = {"ok": result.ok, "errors": result.errors, "first_error": first}
        except BaseException as exc:
            report, code = {"ok": 0, "errors": ops, "first_error": f"{type(exc).__name__}: {exc}"}, 1
        os.write(write_end, json.dumps(report).encode())
        os._exit(code)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(data or b'{"ok": 0, "errors": 1, "first_error": "the run died without reporting"}')


class Counter:
    """The checker's bpftrace: started with the program, attached, stopped for its counts."""

    def __init__(self, workdir: Path, program_text: str):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "verify.bt").write_text(program_text)
        self.out, self.log = self.dir / "verify-bpftrace.out", self.dir / "verify-bpftrace.log"
        env = dict(os.environ, **{ATTACHED: "1", "BPFTRACE_MAP_KEYS_MAX": MAP_KEYS_MAX})
        with open(self.out, "wb") as out, open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["bpftrace", "-f", "json", str(self.dir / "verify.bt")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                env=env,
                start_new_session=True,
                preexec_fn=dies_with(os.getpid()),
            )

    def wait_attached(self, timeout_s: float = ATTACH_TIMEOUT_S) -> float:
        started = time.monotonic()
        while ATTACHED not in self.log.read_text(errors="replace") + self.out.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"bpftrace exited ({self.proc.returncode}) before attaching: {self.tail()}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"bpftrace did not attach within {timeout_s:.0f} s: {self.tail()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-8:])

    def stop(self) -> dict[tuple[int, int], int]:
        """SIGINT (bpftrace prints its maps), then the counts by (phase, slot)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        counts: dict[tuple[int, int], int] = {}
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("type") == "map" and "@evt_count" in record.get("data", {}):
                for key, value in record["data"]["@evt_count"].items():
                    phase, slot = (int(k) for k in key.split(","))
                    counts[(phase, slot)] = int(value)
        return counts


def run(cases: list[Case], workdir: Path) -> Iterator[dict]:
    """Run every case under one bpftrace; yields {"type": "info"|"case", ...} records."""
    counter = Counter(workdir, program(cases))
    try:
        attach_s = counter.wait_attached()
        yield {
            "type": "info",
            "release": os.uname().release,
            "attach_s": round(attach_s, 1),
            "bpftrace": subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip(),
        }
        runs = {}
        for case in cases:
            if not case.unrunnable:
                started = time.monotonic()
                runs[case.phases] = [_run_phase(case, n, p) for n, p in zip(case.ops, case.phases, strict=True)]
                yield {
                    "type": "progress",
                    "event": case.event,
                    "mode": case.mode,
                    "s": round(time.monotonic() - started, 1),
                }
        counts = counter.stop()
    finally:
        if counter.proc.poll() is None:
            os.killpg(counter.proc.pid, signal.SIGKILL)
            counter.proc.wait()
    for case in cases:
        yield case_record(case, runs.get(case.phases), counts)


def case_record(case: Case, runs: list[dict] | None, counts: dict[tuple[int, int], int]) -> dict:
    record = {
        "type": "case",
        "event": case.event,
        "mode": case.mode,
        "ops": list(case.ops),
        "hook": case.hook.describe() if case.hook else "",
        "hook_note": case.hook.note if case.hook else "",
        "ground_truth": case.target.probe,
        "declared_per_op": case.target.per_op,
        "per_op_is": "exact" if case.target.exact else "lower_bound",
        "unrunnable": case.unrunnable,
        "hook_missing": case.hook_missing,
        "target_missing": case.target_missing,
    }
    if runs is not None:
        record["runs"] = runs
        record["hook_counts"] = [counts.get((p, 0), 0) for p in case.phases]
        record["ground_truth_counts"] = [counts.get((p, 1), 0) for p in case.phases]
    return record
