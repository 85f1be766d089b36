"""Command-line entry point: parses arguments and wires them to the modules that act.

Nothing here decides how a run goes; it turns flags into calls (and, for `evt stress`,
Go evt's flags into Hydra overrides) and maps errors to exit codes: 2 for bad input,
1 for a failed run, 130 for Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import uuid
from typing import Any

from evt.cli.results_commands import (
    add_compare_parser,
    add_report_parser,
    add_verify_parser,
    cmd_compare,
    cmd_report,
    cmd_verify,
)
from evt.cli.seedflags import BENCH_HELP, STRESS_FLAGS, STRESS_HELP, stress_overrides  # noqa: F401 (tests use the table)
from evt.errors import RunError, UsageError

# The defaults of `evt trigger`: those of Tracee's Go evt (docs/tracee.md)
TRIGGER_DEFAULTS = {"ops": "1", "parallel": "1", "sleep": "10ns", "signal_timeout": "1m"}


def _trigger_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trigger",
        help="trigger one event at a controlled rate",
        description="Trigger a specific event type to test a tracer's detection.",
    )
    p.add_argument("--event", "-e", default=None, help="event type to trigger (required)")
    p.add_argument("--ops", "-o", default=TRIGGER_DEFAULTS["ops"], help="number of operations per worker (default 1)")
    p.add_argument(
        "--parallel",
        "-p",
        default=TRIGGER_DEFAULTS["parallel"],
        help="number of parallel workers; total ops = workers x ops (default 1)",
    )
    p.add_argument(
        "--sleep",
        "-s",
        default=None,
        help="at least this long between operations, a Go duration (default 10ns; 0 for none)",
    )
    p.add_argument(
        "--rate",
        "-r",
        default=None,
        help="operations per second per worker, kept on absolute deadlines (instead of --sleep)",
    )
    p.add_argument(
        "--max-lag",
        default=None,
        help="with --rate: at most this much of the schedule (a Go duration) is caught up after a stall; "
        "the rest is skipped and counted as late_s (default 10ms)",
    )
    p.add_argument(
        "--bypass-flags",
        "-b",
        action="store_true",
        help="print Tracee --scope flags that hide the trigger's own processes",
    )
    p.add_argument("--wait-signal", "-w", action="store_true", help="wait for SIGUSR1 before starting")
    p.add_argument(
        "--signal-timeout",
        default=TRIGGER_DEFAULTS["signal_timeout"],
        help="timeout for waiting for the start signal (default 1m)",
    )
    p.add_argument(
        "--mode",
        choices=None,
        default=None,
        help="native (syscalls from Python, no fork per op) or script (a shell script per op, as Tracee's evt runs "
        "it); default: native where the trigger has it",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    p.add_argument(
        "--run-id", default=None, help=argparse.SUPPRESS
    )  # marker seed; set by evt stress: a unit, speaks evt.workload.protocol
    p.add_argument("--start-fifo", default=None, help=argparse.SUPPRESS)  # stress start barrier
    p.add_argument("--progress", default=None, help=argparse.SUPPRESS)  # seconds between progress lines


def _list_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the triggers and whether each can run on this host")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")


def _image_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="build the trigger-runner image (or its local Debian base)")
    isub = p.add_subparsers(dest="image_command", required=True)
    build = isub.add_parser("build", help="build the trigger-runner image (EVT_TRIGGER_RUNNER_IMAGE honoured)")
    build.add_argument(
        "--tag", default=None, help="image name (default $EVT_TRIGGER_RUNNER_IMAGE or evt-trigger-runner:latest)"
    )
    build.add_argument(
        "--base-image", default=None, help="BASE_IMAGE for the Dockerfile (default: its public Python base)"
    )
    build.add_argument(
        "--if-stale", action="store_true", help="build only when the image is missing or built from other sources"
    )
    base = isub.add_parser("base", help="build a Debian base image locally with mmdebstrap (no registry needed)")
    base.add_argument("--tag", default="evt-base:bookworm")
    base.add_argument("--suite", default="bookworm")


def cmd_image(args: argparse.Namespace) -> int:
    from evt.runners import image

    if args.image_command == "base":
        image.build_base(args.tag, args.suite)
    elif args.if_stale and image.image_status(args.tag) == "current":
        print(f"image {args.tag or image.image_name()} is up to date")
    else:
        image.build(args.tag, args.base_image)
    return 0


def cmd_bench(argv: list[str]) -> int:
    from evt.cli import hydra_app

    if any(a in ("-h", "--help") for a in argv):
        print(BENCH_HELP)
        return 0
    hydra_args, overrides = stress_overrides(argv)
    return hydra_app.run(hydra_args, overrides, app="bench")


def cmd_stress(argv: list[str]) -> int:
    from evt.cli import hydra_app

    if any(a in ("-h", "--help") for a in argv):
        print(STRESS_HELP)
        return 0
    hydra_args, overrides = stress_overrides(argv)
    return hydra_app.run(hydra_args, overrides)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from evt.stress import cleanup

    return cleanup.run(args.run_id)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _gate(args: argparse.Namespace, timeout_ns: int):
    from evt.workload import trigger

    if args.start_fifo:
        return trigger.FifoGate(args.start_fifo, timeout_ns)
    if args.wait_signal:
        return trigger.SignalGate(timeout_ns)
    return trigger.Gate()


def cmd_trigger(args: argparse.Namespace) -> int:
    """A unit of `evt stress` (it has a --run-id) also speaks evt.workload.protocol, failures included."""
    from evt.workload import protocol

    try:
        return _trigger(args)
    except (UsageError, RunError) as exc:
        if args.run_id is not None:
            print(protocol.encode(protocol.Error(str(exc))), flush=True)
        raise


def _trigger(args: argparse.Namespace) -> int:
    from evt.config.spec import go_duration, go_quote, parse_duration, positive_int, validate_event_name, validate_mode
    from evt.stress.limits import check_host_fits
    from evt.workload import catalog, trigger
    from evt.workload.marker import Marker
    from evt.workload.pacing import Pacing
    from evt.workload.protocol import Result

    if args.event is None:
        raise UsageError('required flag(s) "event" not set\nGive --event <name> (see `evt list`).')
    event = validate_event_name(args.event.strip())
    ops = positive_int(args.ops, "ops", flag='"-o, --ops" flag')
    parallel = positive_int(args.parallel, "parallel", flag='"-p, --parallel" flag')
    if args.sleep is not None:  # Go evt's wording for a bad --sleep
        go_duration(args.sleep, "sleep duration", f'invalid argument {go_quote(args.sleep)} for "-s, --sleep" flag')
    pacing = Pacing.from_flags(args.sleep, args.rate, TRIGGER_DEFAULTS["sleep"], max_lag=args.max_lag)
    timeout_ns = parse_duration(args.signal_timeout, "signal timeout")
    mode = validate_mode(args.mode) if args.mode else None
    check_host_fits(workers=parallel, units=0)
    trig = catalog.get_trigger(event)
    event = trig.event  # an alias (socket_dup) runs its trigger
    if args.bypass_flags:
        print(" ".join(trig.bypass_flags()))
        print(f"If running trigger from this shell, also use: -s tree={os.getppid()}")
        return 0
    mode = mode or trig.default_mode
    trig.mode(mode)
    trig.require(mode)
    marker = Marker.for_run(args.run_id or uuid.uuid4().hex[:12], event)
    # SIGTERM (a stress run stopping its units) unwinds like Ctrl+C: workers are killed
    # and the marker directory removed on the way out.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    gate = _gate(args, timeout_ns)
    out = trigger.Output(event, prefixed=bool(args.wait_signal or args.start_fifo), protocol=args.run_id is not None)
    progress = float(args.progress) if args.progress else None
    try:
        result = trigger.run(trig, mode, ops, parallel, pacing, marker, gate, out, progress)
    except trigger.GateTimeout as exc:
        raise RunError(str(exc)) from exc
    if out.protocol:  # the record carries every field of the --json object
        out.send(Result(result))
    elif args.json:
        out(result.to_json())
    if result.errors:
        failed = [w for w in result.per_worker if w.errors]
        details = "; ".join(
            f"worker {w.worker}: {w.errors} of {w.ops} ops failed, first: {w.first_error}" for w in failed
        )
        raise RunError(details)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from evt.workload import catalog
    from evt.workload.catalog import RELATIONS

    rows: list[dict[str, Any]] = []
    for trig in catalog.default_catalog().values():
        modes = {}
        for name in trig.modes:
            modes[name] = trig.unmet(name)
        rows.append(
            {
                "event": trig.event,
                "tracee_event": trig.tracee_name,
                "aliases": list(trig.aliases),
                "description": trig.description,
                "modes": list(trig.modes),
                "default_mode": trig.default_mode,
                "available": {m: not r for m, r in modes.items()},
                "why_not": {m: r for m, r in modes.items() if r},
                "needs": {m: {k: list(v) for k, v in asdict(trig.mode_needs(m)).items() if v} for m in trig.modes},
                "count": {m: _count_row(mode.target) for m, mode in trig.modes.items()},
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="evt triggers")
    for column in ("event", "modes", "runs here", "why not", "count", "description"):
        table.add_column(column)
    for row in rows:
        mode_list = ", ".join(m + ("*" if m == row["default_mode"] else "") for m in row["modes"])
        ok = [m for m, a in row["available"].items() if a]
        runs = "yes" if len(ok) == len(row["modes"]) else (", ".join(ok) + " only" if ok else "no")
        why = "; ".join(f"{m}: {', '.join(r)}" for m, r in row["why_not"].items())
        count = "; ".join(f"{m}: {c['relation']}" for m, c in row["count"].items())
        name = row["event"] + (f" (Tracee: {row['tracee_event']})" if row["tracee_event"] != row["event"] else "")
        table.add_row(name, mode_list, runs, why, count, row["description"])
    Console(width=220).print(table)
    print(
        "* default mode. count: how the ground truth relates to the Tracee event: "
        + "; ".join(f"{k} = {v}" for k, v in RELATIONS.items())
        + " (`evt list --json` gives each reason)"
    )
    return 0


def _count_row(target) -> dict[str, object]:
    """One mode's ground truth as `evt list --json` shows it."""
    return {
        "relation": target.relation,
        "reason": target.reason,
        "probe": target.probe,
        "filter": target.filter,
        "per_op": target.per_op,
        "per_op_is": "exact" if target.exact else "lower_bound",
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evt", description="Generate kernel events and stress-test eBPF tracers.")
    sub = parser.add_subparsers(dest="command", required=True)
    _trigger_parser(sub)
    _list_parser(sub)
    _image_parser(sub)
    sub.add_parser("stress", help="run a stress test (see `evt stress --help`)", add_help=False)
    sub.add_parser(
        "bench", help="find a tracer's highest sustainable event rate (see `evt bench --help`)", add_help=False
    )
    add_compare_parser(sub)
    add_report_parser(sub)
    add_verify_parser(sub)
    cleanup = sub.add_parser("cleanup", help="remove the containers, processes and cgroups a killed run left")
    cleanup.add_argument("--run-id", default=None, help="only this run")
    return parser


COMMANDS = {
    "trigger": cmd_trigger,
    "list": cmd_list,
    "image": cmd_image,
    "cleanup": cmd_cleanup,
    "compare": cmd_compare,
    "report": cmd_report,
    "verify": cmd_verify,
}
HYDRA_COMMANDS = {"stress": cmd_stress, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    if argv is not None:  # called from Python (tests): the caller's signal handling stays as it is
        return _main(argv)
    code = _main(sys.argv[1:])
    # The program ends here: its runs are cleaned up and written. A late Ctrl+C or SIGTERM
    # (a second one, after the first one's cleanup) would otherwise kill the interpreter on
    # its way out (Python resets its handlers to the default then, but not an ignore) and
    # replace the exit code with a death by signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    _end_process(code)
    return code


def _end_process(code: int) -> None:
    """End the process now, skipping the interpreter's teardown: freeing every module and
    object (pandas, Hydra, the docker SDK) adds a few tenths of a second to every run. Exit
    handlers still run and the streams are flushed; with a thread still alive (none is, by
    now), the normal exit waits for it instead."""
    import atexit
    import threading

    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()  # logging.shutdown and whatever a library registered
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        if argv and argv[0] in HYDRA_COMMANDS:  # Hydra parses the rest
            return HYDRA_COMMANDS[argv[0]](argv[1:])
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen host state: one line, traceback in a log
        from evt.cli import crash

        print(crash.report(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
