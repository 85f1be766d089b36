"""tracer=auditd: the Linux audit system as the tracer under test.

evt starts its own audit daemon (`auditd -n -c <run>/tracer/auditd`, with an auditd.conf
rendered from templates/auditd.conf.j2: the log in that directory, no plugins), waits
until the kernel names it as the audit daemon, sets the run's auditd.* kernel settings
and loads audit rules for the run's units (evt/tracers/auditd/rules.py). While the units
run it reads the kernel's status (backlog) every auditd.status_interval. At the end it
waits for the kernel's backlog to empty, deletes its rules, stops the daemon (SIGTERM)
and puts the kernel's settings back as they were; the saved settings and the rule keys
are recorded for `evt cleanup` first (evt/tracers/auditd/control.py).

It refuses to run (UsageError, nothing started) when auditd or auditctl is missing, when
the kernel has no audit, when audit is locked (`enabled 2`), and when another audit
daemon is registered: that one is never taken over.

observed: each unit's audited syscalls (records.py); lost.audit_kernel: what the
kernel's `lost` counter gained during the run (records it dropped: backlog full with
backlog_wait_time 0, or over rate_limit, for any rule on the host).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import signal
import subprocess
import time

import psutil

from evt.config.spec import parse_seconds
from evt.config.templating import render
from evt.errors import RunError, UsageError
from evt.procs import ManagedProcess, Stop, Usage, command_version, exit_text, log_tail
from evt.stress import runstate
from evt.stress.plan import RunContext, Unit
from evt.tracers.auditd import rules as audit_rules
from evt.tracers.auditd.control import LOCKED, Auditctl, AuditctlError, StatusWatch, restore, saved_settings
from evt.tracers.auditd.records import Matcher, count_file, matcher_of
from evt.tracers.base import Durations, Tracer, TracerReport

log = logging.getLogger(__name__)

FLUSH_MODES = ("NONE", "INCREMENTAL", "INCREMENTAL_ASYNC", "DATA", "SYNC")
MAX_BACKLOG_WAIT_MS = 600000  # the kernel refuses more (10 * 60 s)
DRAIN_TIMEOUT_S = 30.0  # for the kernel's backlog to reach auditd after the units end
RESTORE_KIND = "audit"
SETUP_HINT = "`make setup` installs them (Debian package auditd)"


class AuditdTracer(Tracer):
    name = "auditd"

    def __init__(self, run: RunContext, name: str, settings):
        """Built with `settings`, the auditd section (conf/tracer/auditd.yaml: ${auditd})."""
        super().__init__(run, name)
        self.acfg = settings
        self.durations = Durations.parse(self.acfg, "auditd")
        self.status_interval_s = parse_seconds(str(self.acfg.status_interval), "auditd.status_interval")
        self.dir = self.run_dir / "tracer"
        self.conf_dir = self.dir / "auditd"  # auditd makes its log's directory private (0700)
        self.log_file = self.conf_dir / "audit.log"
        self.log_path = self.dir / "auditd.log"  # its stdout and stderr (it logs to syslog with -n)
        self.auditctl = Auditctl(str(self.acfg.auditctl))
        self.proc: ManagedProcess | None = None
        self.crashed: str | None = None
        self.watch: StatusWatch | None = None
        self.saved: dict[str, int] | None = None  # the kernel's settings before the run
        self.keys: list[str] = []
        self.matchers: list[Matcher] = []
        self.before: dict[str, int] = {}
        self.after: dict[str, int] = {}
        self.known_syscalls: set[str] = set()
        self._rule_args: list[list[str]] = []
        self._restored = False

    @property
    def run_id(self) -> str:
        return str(self.run.run_id)

    # -- before anything starts -------------------------------------------------------

    def _tool(self, configured: str, key: str) -> str:
        found = shutil.which(configured)
        if not found:
            raise UsageError(
                f"{configured!r} ({key}) is not an executable on PATH: tracer=auditd needs auditd, "
                f"auditctl and ausyscall; {SETUP_HINT}, or point {key}=/path/to/it at it."
            )
        return found

    def check(self, units: list[Unit]) -> None:
        self._check_settings()
        self._tool(str(self.acfg.binary), "auditd.binary")
        self._tool(str(self.acfg.auditctl), "auditd.auditctl")
        status = self._kernel_status()
        self._check_free(status)
        counted = audit_rules.audited(units)
        self.known_syscalls = self._syscall_names()
        for unit in counted:
            if not any(name in self.known_syscalls for name in audit_rules.SYSCALLS[unit.event]):
                raise UsageError(
                    f"unit {unit.name}: audit knows none of the syscalls of {unit.event} "
                    f"({', '.join(audit_rules.SYSCALLS[unit.event])}) on this machine."
                )
        if units and not counted:
            log.warning(
                "auditd counts none of this run's units: it counts native units of %s", ", ".join(audit_rules.SYSCALLS)
            )

    def _check_settings(self) -> None:
        a = self.acfg
        if str(a.flush) not in FLUSH_MODES:
            raise UsageError(
                f"invalid auditd.flush {a.flush!r}: use one of {', '.join(FLUSH_MODES)} "
                "(auditd.conf's flush: how auditd writes its log)."
            )
        if int(a.freq) < 0 or (str(a.flush).startswith("INCREMENTAL") and int(a.freq) < 1):
            raise UsageError(
                f"invalid auditd.freq {a.freq}: the records between flushes, at least 1 with auditd.flush={a.flush}."
            )
        if a.backlog_limit is not None and int(a.backlog_limit) < 1:
            raise UsageError(
                f"invalid auditd.backlog_limit {a.backlog_limit}: the records the kernel queues for "
                "auditd, at least 1 (leave it unset for the kernel's current value)."
            )
        wait = a.backlog_wait_time
        if wait is not None and not 0 <= int(wait) <= MAX_BACKLOG_WAIT_MS:
            raise UsageError(
                f"invalid auditd.backlog_wait_time {wait}: milliseconds from 0 (a full backlog drops "
                f"records) to {MAX_BACKLOG_WAIT_MS} (processes wait that long for room)."
            )
        if a.rate_limit is not None and int(a.rate_limit) < 0:
            raise UsageError(f"invalid auditd.rate_limit {a.rate_limit}: records per second, 0 for no limit.")

    def _kernel_status(self) -> dict[str, int]:
        try:
            return self.auditctl.status()
        except AuditctlError as exc:
            raise UsageError(
                f"the kernel's audit is unavailable ({exc}): the kernel has no audit support "
                "(CONFIG_AUDIT) or was booted with audit=0, or evt is not root. Pick another "
                "tracer (tracer=bpftrace) on this machine."
            ) from None

    def _check_free(self, status: dict[str, int]) -> None:
        if status.get("enabled") == LOCKED:
            raise UsageError(
                "the kernel's audit configuration is locked (`auditctl -s`: enabled 2) until the next "
                "reboot: evt cannot load rules. Reboot without `-e 2` in the audit rules to use tracer=auditd."
            )
        pid = status.get("pid", 0)
        if pid:
            try:
                owner = f"{psutil.Process(pid).name()} (pid {pid})"
            except psutil.Error:
                owner = f"pid {pid}"
            raise UsageError(
                f"another audit daemon is registered with the kernel: {owner}, per `auditctl -s`. evt "
                "never takes it over: stop it yourself (e.g. `service auditd stop`) and retry, or "
                "pick another tracer."
            )

    def _syscall_names(self) -> set[str]:
        ausyscall = self._tool("ausyscall", "ausyscall")
        done = subprocess.run([ausyscall, "--dump"], capture_output=True, text=True, timeout=10)
        names = audit_rules.syscall_names(done.stdout)
        if done.returncode != 0 or not names:
            raise UsageError(
                f"`{ausyscall} --dump` listed no syscalls (exit code {done.returncode}: "
                f"{' '.join(done.stderr.split()) or 'no message'}): reinstall auditd (`make setup`)."
            )
        return names

    def command(self, units: list[Unit]) -> list[str]:
        binary = shutil.which(str(self.acfg.binary)) or str(self.acfg.binary)
        return [binary, "-n", "-s", "enable", "-c", str(self.conf_dir)]

    def version(self) -> str | None:
        found = shutil.which(str(self.acfg.auditctl))
        return command_version([found, "-v"]) if found else None  # "auditctl version 3.0.9"

    # -- running ------------------------------------------------------------------------

    def start(self, units: list[Unit]) -> None:
        if not self.known_syscalls:
            self.check(units)
        status = self._kernel_status()
        self._check_free(status)  # another daemon may have come since check()
        counted = audit_rules.audited(units)
        rule_args = [args for unit in counted for args in self._rules_of(unit)]
        self.keys = [audit_rules.key_of(u) for u in counted]
        self.matchers = [matcher_of(u) for u in counted]
        self.saved = saved_settings(status)
        # recorded before anything changes: `evt cleanup` puts it back after a kill -9
        runstate.set_restore(
            self.run_id, RESTORE_KIND, {"auditctl": self.auditctl.binary, "settings": self.saved, "keys": self.keys}
        )
        self._write_config()
        (self.conf_dir / "rules.txt").write_text("".join(shlex.join(["auditctl", *a]) + "\n" for a in rule_args))
        self._rule_args = rule_args
        argv = self.command(units)
        log.info("Starting auditd: %s", shlex.join(argv))
        try:
            self.proc = ManagedProcess(argv, self.log_path)
        except OSError as exc:
            raise RunError(f"could not start auditd ({argv[0]}): {exc}") from exc
        log.info("auditd started with PID: %d", self.proc.pid)

    def _rules_of(self, unit: Unit) -> list[list[str]]:
        try:
            return audit_rules.rule_args(unit, audit_rules.scope_of(unit), self.known_syscalls)
        except ValueError as exc:
            raise RunError(f"no audit rule for unit {unit.name}: {exc}") from None

    def _write_config(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        plugin_dir = self.conf_dir / "plugins.d"  # empty: auditd dispatches to no plugin
        plugin_dir.mkdir(exist_ok=True)
        text = render(
            str(self.acfg.template),
            run_id=self.run_id,
            log_file=str(self.log_file),
            flush=str(self.acfg.flush),
            freq=int(self.acfg.freq),
            plugin_dir=str(plugin_dir),
        )
        conf = self.conf_dir / "auditd.conf"
        conf.write_text(text)
        conf.chmod(0o600)  # auditd refuses a configuration others may write

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def usage(self) -> Usage | None:
        return self.proc.sampler.usage() if self.proc is not None else None

    def wait_ready(self) -> None:
        """Until the kernel names our auditd as its audit daemon; then the settings and rules."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + self.durations.ready_timeout_s
        while self._kernel_daemon() != self.proc.pid:
            if not self.proc.running:
                foreground = [("-f" if arg == "-n" else arg) for arg in self.proc.argv]
                raise RunError(
                    f"auditd {exit_text(self.proc.returncode)} before it registered with the kernel; it "
                    f"logs why to syslog: `{shlex.join(foreground)}` shows it on the terminal. "
                    f"Its output:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise RunError(
                    f"auditd did not register with the kernel within {self.acfg.ready_timeout} "
                    "(raise auditd.ready_timeout)."
                )
            time.sleep(0.02)
        try:
            self.auditctl.apply(self._settings())
            for args in self._rule_args:
                self.auditctl.run(args)
        except AuditctlError as exc:
            raise RunError(f"the kernel refused a setting or rule of this run: {exc}") from None
        self.watch = StatusWatch(self.auditctl, self.status_interval_s)
        self.before = self.watch.read()
        self.watch.start()
        log.info(
            "auditd is ready (PID: %d): %d rules for %d units, backlog_limit %s, backlog_wait_time %s, rate_limit %s",
            self.proc.pid,
            len(self._rule_args),
            len(self.keys),
            self.before.get("backlog_limit"),
            self.before.get("backlog_wait_time"),
            self.before.get("rate_limit"),
        )
        if self.durations.init_cooldown_s:
            time.sleep(self.durations.init_cooldown_s)

    def _kernel_daemon(self) -> int | None:
        try:
            return self.auditctl.status().get("pid")
        except AuditctlError as exc:
            raise RunError(f"cannot read the kernel's audit status: {exc}") from None

    def _settings(self) -> dict[str, int]:
        wanted = {name: getattr(self.acfg, name) for name in ("backlog_limit", "backlog_wait_time", "rate_limit")}
        return {name: int(value) for name, value in wanted.items() if value is not None}

    def poll(self) -> str | None:
        if self.crashed is None and self.proc is not None and self.proc.poll():
            self.crashed = (
                f"auditd {exit_text(self.proc.returncode)} while the units ran; its output:\n{self.log_tail()}"
            )
        return self.crashed

    def drain(self) -> None:
        """Let the kernel's backlog reach auditd, then take the status after the run."""
        if self.watch is None or self.proc is None or not self.proc.running:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.watch.read().get("backlog", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.watch.stop()
        self.after = self.watch.read()

    def stop(self) -> None:
        """Rules deleted, the daemon stopped (SIGTERM, then SIGKILL), the settings put back."""
        if self.watch is not None:
            self.watch.stop()
        if self.proc is not None and not self.proc.stopping:
            self.poll()
            if self.keys:
                try:
                    self.auditctl.delete_keys(self.keys)
                except AuditctlError as exc:
                    log.error("deleting evt's audit rules: %s", exc)
            if not self.after and self.watch is not None:
                self.after = self.watch.read()
            if self.proc.running:
                log.info("Stopping auditd (PID: %d) with SIGTERM...", self.proc.pid)
            outcome = self.proc.stop(self.durations.stop_timeout_s, signal.SIGTERM, before_kill=self._say_kill)
            if outcome in (Stop.KILLED, Stop.STUCK):
                self.crashed = self.crashed or f"auditd did not exit within {self.acfg.stop_timeout} and was killed"
        self._restore()

    def _restore(self) -> None:
        if self.saved is None or self._restored:
            return
        self._restored = True
        failures = restore(self.auditctl, self.saved, self.keys)
        if failures:
            log.error(
                "could not restore the kernel's audit settings (`evt cleanup --run-id %s` retries): %s",
                self.run_id,
                "; ".join(failures),
            )
            return
        runstate.clear_restore(self.run_id, RESTORE_KIND)
        log.info(
            "audit rules deleted and settings restored: %s",
            ", ".join(f"{name} {value}" for name, value in self.saved.items()),
        )

    def _say_kill(self) -> None:
        log.warning("auditd did not stop within %s, sending SIGKILL...", self.acfg.stop_timeout)

    # -- results ------------------------------------------------------------------------

    def report(self, units: list[Unit]) -> TracerReport:
        if self.proc is None:
            return TracerReport(tracer=self.name, command=self.command(units), observed=None, crashed=self.crashed)
        counts = count_file(self.log_file, self.matchers)
        after = self.after or (self.watch.last if self.watch else {})
        metrics: dict[str, float] = {
            "records_written": counts.records,
            "audit_syscall_records": counts.by_type.get("SYSCALL", 0),
            "audit_keyed_records": counts.keyed,
        }
        lost: dict[str, int] = {}
        if self.before and after:
            lost["audit_kernel"] = after.get("lost", 0) - self.before.get("lost", 0)
            metrics["audit_backlog_max"] = self.watch.backlog_max if self.watch else 0
            metrics["audit_backlog_wait_time_actual"] = after.get("backlog_wait_time_actual", 0) - self.before.get(
                "backlog_wait_time_actual", 0
            )
            for name in ("backlog_limit", "backlog_wait_time", "rate_limit"):
                metrics[f"audit_{name}"] = self.before.get(name, 0)
        sampler = self.proc.sampler
        return TracerReport(
            tracer=self.name,
            command=self.proc.argv,
            observed=counts.observed,
            lost=lost,
            metrics=metrics,
            cpu_s=sampler.cpu_s,
            peak_rss_bytes=sampler.peak_rss,
            wall_s=sampler.wall_s,
            resources=sampler.resources(),
            log_path=str(self.log_file),
            crashed=self.crashed,
        )

    def log_tail(self) -> str:
        return "\n".join(f"    {line}" for line in log_tail(self.log_path)) or "    (empty)"
