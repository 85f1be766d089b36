"""`evt verify`: checks its input, then runs the checker on this host (a kernel with
kprobes, evt as root) or, with --kernel, in a VM per stock kernel; writes the run
directory (outputs/verify/<time>-<id>/), prints the verdicts, and with --record writes
them into the trigger files, with --check compares them with what those files record."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from evt import host
from evt.config.spec import positive_int, validate_mode
from evt.errors import RunError, UsageError
from evt.stress import runstate
from evt.verify import checker, results
from evt.verify.recorded import record as record_results
from evt.workload import catalog

DEFAULT_TIMEOUT_S = 1200.0  # one VM for the whole catalog: ~3 min here, far longer on a loaded machine


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _request(args) -> dict:
    triggers = (
        [catalog.get_trigger(e.strip()) for e in args.event] if args.event else list(catalog.default_catalog().values())
    )
    modes = [validate_mode(m) for m in args.mode] if args.mode else None
    ops = positive_int(args.ops, "ops", flag="--ops") if args.ops is not None else None
    return {
        "events": [t.event for t in triggers] if args.event else None,
        "modes": modes,
        "ops": ops,
        "triggers": triggers,
    }


def _check_host() -> None:
    missing = host.check_kernel_feature("kprobes")
    if missing:
        raise UsageError(
            f"this host cannot verify triggers at Tracee's hooks: its kernel {os.uname().release} has no "
            f"kprobes ({missing.removeprefix('needs kprobes: ')}); verify in a VM with a stock kernel "
            "instead: evt verify --kernel debian-6.1"
        )
    if os.geteuid() != 0:
        raise UsageError(
            "evt verify on this host runs bpftrace and the triggers as root: run it as root, "
            "or in a VM with --kernel debian-6.1."
        )


def run(args) -> int:
    from evt.verify import kernels, vm

    if args.table:
        print(results.recorded_markdown(catalog.load_catalog()), end="")
        return 0
    request = _request(args)
    names = [kernels.validate(k) for k in args.kernel]
    if names:
        vm.check_qemu()
        if args.accel not in ("tcg", "kvm"):
            raise UsageError(f"invalid --accel {args.accel!r}: use tcg (software emulation) or kvm.")
    else:
        _check_host()
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_dir = Path(args.out) if args.out else Path("outputs") / "verify" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _sigterm)
    runstate.begin(run_id, str(run_dir))
    table: list[dict] = []
    meta: dict[str, Any] = {"run_id": run_id, "date": time.strftime("%Y-%m-%d"), "kernels": []}
    try:
        for name in names or ["host"]:
            started = time.monotonic()
            records = (
                _verify_vm(name, request, run_dir, run_id, args) if names else _verify_host(request, run_dir, run_id)
            )
            info = next((r for r in records if r.get("type") == "info"), {})
            table += results.rows(name, info.get("release", ""), records)
            meta["kernels"].append(
                {
                    "name": name,
                    "release": info.get("release"),
                    "bpftrace": info.get("bpftrace"),
                    "attach_s": info.get("attach_s"),
                    "wall_s": round(time.monotonic() - started, 1),
                }
            )
    finally:
        runstate.finish(run_id)
    frame = results.write(run_dir, table, meta)
    _print(frame, run_dir)
    if args.record:
        _record(table, meta)
    if args.check:
        found = results.regressions(table, recorded_verdicts())
        if found:
            raise RunError(
                f"{len(found)} verdict(s) differ from those recorded in the trigger files: " + "; ".join(found)
            )
        print("every verdict is the one recorded in the trigger files")
    return 0


def _verify_vm(name: str, request: dict, run_dir: Path, run_id: str, args) -> list[dict]:
    from evt.verify import image, kernels, vm

    kernel = kernels.fetch(name)
    initrd = image.initrd(register=lambda pid, role: runstate.add_process(run_id, pid, role))
    print(
        f"booting {kernel.package} ({kernel.version}) under qemu ({args.accel}); console: {run_dir / 'vm-console.log'}",
        flush=True,
    )
    wire = {k: v for k, v in request.items() if k != "triggers"} | {"run_id": run_id}
    timeout = float(args.timeout) if args.timeout else DEFAULT_TIMEOUT_S
    return vm.boot(kernel, initrd, run_dir, wire, run_id, args.accel, timeout, _progress)


def _verify_host(request: dict, run_dir: Path, run_id: str) -> list[dict]:
    cases = checker.plan(request["triggers"], tuple(request["modes"] or ()) or None, request["ops"], run_id)
    records = []
    for record in checker.run(cases, run_dir / "host"):
        _progress(record)
        records.append(record)
    return records


def _progress(record: dict) -> None:
    if record.get("type") == "info":
        print(f"  {record.get('release')}: bpftrace attached its probes in {record.get('attach_s')} s", flush=True)
    elif record.get("type") == "progress":
        print(f"  {record['event']} {record['mode']}: {record['s']} s", flush=True)


def _print(frame, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="evt verify: each trigger at its Tracee hook")
    for column in ("kernel", "event", "mode", "hook", "declared/op", "at hook/op", "verdict"):
        table.add_column(column)
    for row in frame.itertuples():
        measured = (
            ""
            if row.measured_per_op != row.measured_per_op or row.measured_per_op is None
            else f"{row.measured_per_op:g}"
        )
        table.add_row(
            str(row.kernel),
            row.event,
            row.mode,
            str(row.hook).split(" /")[0][:60],
            str(row.declared_per_op),
            measured,
            row.verdict + (f": {row.why}" if row.verdict in ("cannot_run", "differs") else ""),
        )
    Console(width=200).print(table)
    print(f"results: {run_dir / 'verify.csv'}")


def recorded_verdicts() -> dict[tuple[str, str, str], str]:
    return {
        (v.kernel, trig.event, mode): v.verdict
        for trig in catalog.load_catalog().values()
        for mode, verified in trig.verified.items()
        for v in verified
    }


def _record(table: list[dict], meta: dict) -> None:
    """Each kernel's verdicts into the trigger files (not the host's: only a named stock
    kernel is a result someone else can reproduce)."""
    by_trigger: dict[tuple[str, str, str], dict[str, dict]] = {}
    for row in table:
        if row["kernel"] == "host":
            continue
        key = (row["event"], row["kernel"], row["release"])
        by_trigger.setdefault(key, {})[row["mode"]] = {"verdict": row["verdict"], "per_op": row["measured_per_op"]}
    triggers = catalog.load_catalog()
    for (event, kernel, release), modes in by_trigger.items():
        record_results(triggers[event].source, kernel, release, meta["date"], modes)
    print(f"recorded {len(by_trigger)} trigger result(s) in {catalog.TRIGGERS_DIR}")
