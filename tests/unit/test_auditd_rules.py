"""tracer=auditd without the audit system: the rules it renders for a run's units, the
`auditctl -s` and `ausyscall --dump` output it reads, its records parser on audit log lines
captured from real runs here (tests/fixtures/auditd/), and the settings it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from evt.errors import UsageError
from evt.tracers.auditd import records, rules
from evt.tracers.auditd.control import parse_status, saved_settings
from evt.tracers.auditd.records import matcher_of
from evt.tracers.auditd.tracer import AuditdTracer
from helpers import compose_cfg, make_unit, tracer_from

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "fixtures" / "auditd"  # see its README
X86_64 = {"open", "openat", "openat2", "execve", "execveat", "connect", "unlink", "unlinkat"}


def test_a_worker_unit_is_audited_by_its_syscalls_its_root_process_and_its_marker_file():
    unit = make_unit("security_file_open", run_id="r1", pid=4242)
    args = rules.rule_args(unit, rules.Scope(parents=(4242,), path=unit.marker.file), X86_64)
    assert args == [
        [
            "-a",
            "always,exit",
            "-F",
            "arch=b64",
            "-S",
            "open",
            "-S",
            "openat",
            "-S",
            "openat2",
            "-F",
            "ppid=4242",
            "-F",
            f"path={unit.marker.file}",
            "-k",
            f"evt-{unit.marker.token}",
        ]
    ]


def test_only_the_syscalls_this_architecture_has_are_named():
    unit = make_unit("security_inode_unlink", pid=7)
    (args,) = rules.rule_args(unit, rules.Scope(parents=(7,)), {"unlinkat"})
    assert [args[i + 1] for i, a in enumerate(args) if a == "-S"] == ["unlinkat"]
    assert "-F" in args and "path" not in " ".join(args)
    with pytest.raises(ValueError, match="none of unlink, unlinkat is a syscall audit knows"):
        rules.rule_args(unit, rules.Scope(parents=(7,)), {"openat"})


def test_an_exec_unit_gets_one_rule_per_worker_all_with_the_units_key():
    unit = make_unit("sched_process_exec", pid=10)
    args = rules.rule_args(unit, rules.Scope(parents=(11, 12)), X86_64)
    assert [a[a.index("-F", 4) + 1] for a in args] == ["ppid=11", "ppid=12"]
    assert {a[-1] for a in args} == {rules.key_of(unit)}
    with pytest.raises(ValueError, match="no process to scope"):
        rules.rule_args(unit, rules.Scope(parents=()), X86_64)


def test_audited_units_are_native_units_of_the_events_audit_sees():
    units = [
        make_unit("security_file_open"),
        make_unit("security_file_open", name="script", mode="script"),
        make_unit("sched_process_fork"),
        make_unit("ptrace"),
    ]
    assert [u.name for u in rules.audited(units)] == ["security_file_open", "ptrace"]


def test_syscall_names_are_read_from_ausyscall_dump():
    dump = "Using x86_64 syscall table:\n0\tread\n1\twrite\n257\topenat\n"
    assert rules.syscall_names(dump) == {"read", "write", "openat"}


def test_the_kernel_status_and_the_settings_evt_restores():
    text = (
        "enabled 1\nfailure 1\npid 17634\nrate_limit 0\nbacklog_limit 64\nlost 0\nbacklog 0\n"
        "backlog_wait_time 15000\nbacklog_wait_time_actual 13\nloginuid_immutable 0 unlocked\n"
    )
    status = parse_status(text)  # `auditctl -s` of auditd 3.0.9 here
    assert status["pid"] == 17634 and status["loginuid_immutable"] == 0 and status["backlog_wait_time_actual"] == 13
    assert saved_settings(status) == {"enabled": 1, "backlog_limit": 64, "backlog_wait_time": 15000, "rate_limit": 0}


# -- records: real lines of auditd 3.0.9 logs (log_format RAW) ------------------------------


def captured(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines(keepends=True)


def test_a_record_is_split_into_type_serial_and_fields_strings_decoded():
    line = captured("file_open.log")[8]
    kind, serial, fields = records.parse_record(line)
    assert (kind, serial) == ("SYSCALL", 343957)
    assert records.text(fields["comm"]) == "python"
    kind, serial, fields = records.parse_record(captured("file_open.log")[12])
    assert records.text(fields["comm"]) == "evt-dcba28e3" and records.text(fields["key"]) == "evt-dcba28e3"
    assert records.text("(null)") == "" and records.text("65767420782079") == "evt x y"
    assert records.parse_record("not a record\n") is None


def test_one_event_per_syscall_of_the_units_key_and_marker_comm_whatever_its_auxiliary_records():
    unit = make_unit("security_file_open", run_id="r1")
    matcher = records.Matcher(unit="file", key="evt-dcba28e3", comm="evt-dcba28e3")
    counts = records.count(captured("file_open.log"), [matcher])
    # the capture: 5 opens of the marker comm (each SYSCALL, CWD, PATH, PROCTITLE), one by
    # the process before it took the marker comm, one after it took another (written in hex);
    # the daemon's and auditctl's own records
    assert counts.observed == {"file": 5}
    assert counts.keyed == 7
    assert counts.by_type["SYSCALL"] == 10 and counts.by_type["PATH"] == 7
    assert counts.records == len(captured("file_open.log"))
    assert matcher_of(unit).comm == unit.marker.comm


def test_an_exec_counts_when_its_execve_record_runs_the_marker_executable():
    log = captured("exec.log")
    key = next(
        records.text(f["key"])
        for kind, _, f in filter(None, map(records.parse_record, log))
        if kind == "SYSCALL" and records.text(f.get("key", "")).startswith("evt-")
    )
    exe = f"/tmp/evt-{key.removeprefix('evt-')}/true"
    counts = records.count(log, [records.Matcher(unit="exec", key=key, exe_arg=exe)])
    assert counts.observed == {"exec": 3}
    other = records.count(log, [records.Matcher(unit="exec", key=key, exe_arg="/bin/true")])
    assert other.observed == {"exec": 1} and other.keyed == counts.keyed == 4  # /bin/true once


# -- settings refused before anything starts -----------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("auditd.flush=SOMETIMES", "invalid auditd.flush 'SOMETIMES': use one of NONE, INCREMENTAL"),
        (
            "auditd.freq=0",
            "invalid auditd.freq 0: the records between flushes, at least 1 with auditd.flush=INCREMENTAL_ASYNC",
        ),
        ("auditd.backlog_limit=0", "invalid auditd.backlog_limit 0"),
        ("auditd.backlog_wait_time=-1", "invalid auditd.backlog_wait_time -1: milliseconds from 0"),
        ("auditd.backlog_wait_time=600001", "invalid auditd.backlog_wait_time 600001"),
        ("auditd.rate_limit=-5", "invalid auditd.rate_limit -5"),
        (
            "auditd.auditctl=evt-test-no-auditctl",
            "'evt-test-no-auditctl' (auditd.auditctl) is not an executable on PATH",
        ),
        ("auditd.binary=evt-test-no-auditd", "`make setup` installs them (Debian package auditd)"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(tmp_path, override, message):
    tracer = tracer_from(compose_cfg("tracer=auditd", override), tmp_path)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", ".")):
        tracer.check([make_unit()])
    assert isinstance(tracer, AuditdTracer) and not (tmp_path / "tracer").exists()
