"""The commands that judge and check: `evt compare`, `evt report` and `evt verify` (their
flags, and the call into evt.analysis or evt.verify, imported only when run)."""

from __future__ import annotations

import argparse


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare a candidate's results with a baseline's (exit 1 on a regression)",
        description="Compare two runs, sweeps or sets of repeated runs of the same scenarios. "
        "Exit 0: nothing regressed; 1: something did, a gated figure is missing from the "
        "candidate, or a candidate run did not end ok; 2: input that cannot be read.",
    )
    p.add_argument(
        "baseline",
        help="run directory, sweep directory or directory of repeated runs, or a Tracee "
        "perf-gate baseline file <arch>-<scenario>.json (its figures and thresholds)",
    )
    p.add_argument("candidate", help="run directory, sweep directory or directory of repeated runs")
    p.add_argument(
        "--threshold",
        "-t",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a threshold, e.g. events_per_s=5 (percent), loss_pct=0.5 (points), peak_rss_bytes=off; "
        "alpha=0.05 sets the Mann-Whitney significance level (repeatable)",
    )
    p.add_argument("--thresholds-file", default=None, metavar="YAML", help="a YAML file of `name: value` thresholds")
    p.add_argument(
        "--allow-failed",
        action="store_true",
        help="a candidate run that did not end ok (failed, crashed, interrupted...) is a note, not exit 1",
    )
    p.add_argument(
        "--loss-stat",
        choices=["worst", "median"],
        default="worst",
        help="judge each side's loss by its worst run (default: a lossy run is a finding) or its median",
    )
    p.add_argument("--out", "-o", default=None, help="output directory (default outputs/compare/<time>-<id>)")


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="report.md and plots of a run, a sweep or a comparison",
        description="Write report.md and PNG plots for a run, a sweep or an `evt compare` directory.",
    )
    p.add_argument("path", help="run directory, sweep directory or comparison directory")
    p.add_argument("--out", "-o", default=None, help="output directory (default: <path>/report)")


def cmd_compare(args: argparse.Namespace) -> int:
    from evt.analysis import compare_view

    return compare_view.run(
        args.baseline,
        args.candidate,
        args.threshold,
        args.thresholds_file,
        args.out,
        allow_failed=args.allow_failed,
        loss_stat=args.loss_stat,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from evt.analysis import report

    return report.run(args.path, args.out)


def add_verify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check each trigger at the kernel function Tracee hooks (here, or in a VM)",
        description="Run each trigger under bpftrace and count its events at the kernel function or "
        "tracepoint Tracee attaches for the event. On this host when its kernel has kprobes; "
        "with --kernel in a VM booting a stock Debian kernel (qemu; the first run builds and "
        "caches the VM image under ~/.cache/evt).",
    )
    p.add_argument("--event", "-e", action="append", default=[], help="only this trigger (repeatable; default: all)")
    p.add_argument("--mode", action="append", default=[], help="only this mode: native or script (repeatable)")
    p.add_argument(
        "--kernel",
        "-k",
        action="append",
        default=[],
        help="verify in a VM on this kernel: debian-6.1, "
        "debian-6.12 or a Debian linux-image-*-amd64 package (repeatable)",
    )
    p.add_argument(
        "--ops",
        default=None,
        help="ops of each case's first run (the second runs twice as many; default 5 native, 1 script)",
    )
    p.add_argument("--accel", default="tcg", help="qemu accelerator: tcg (default, software) or kvm")
    p.add_argument("--timeout", default=None, help="seconds a VM may take from boot to power-off (default 1200)")
    p.add_argument("--out", "-o", default=None, help="output directory (default outputs/verify/<time>-<id>)")
    p.add_argument("--record", action="store_true", help="write the verdicts into the trigger files (verified:)")
    p.add_argument("--check", action="store_true", help="exit 1 when a verdict differs from the one recorded")
    p.add_argument(
        "--table", action="store_true", help="print the recorded verdicts as the docs' Markdown table; run nothing"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from evt.verify import command

    return command.run(args)
