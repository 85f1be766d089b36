"""The kernel's audit state through `auditctl`: its status, the settings evt changes for a
run, the run's rules, and putting all of it back as it was.

What evt changes is recorded in the run's state (evt/stress/runstate.py, kind "audit") before it
is changed: the settings as they were and the keys of the rules it loads, so that
`evt cleanup` after a `kill -9` of evt restores them too (restore_recorded)."""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass

from evt.tracers.auditd.rules import delete_args

log = logging.getLogger(__name__)

# The settings evt sets for a run and restores after it, by `auditctl -s` name: their flag
SETTINGS: dict[str, str] = {
    "enabled": "-e",
    "backlog_limit": "-b",
    "backlog_wait_time": "--backlog_wait_time",
    "rate_limit": "-r",
}
AUDITCTL_TIMEOUT_S = 10.0
LOCKED = 2  # `enabled 2`: the configuration is immutable until reboot


class AuditctlError(Exception):
    """auditctl failed: its message (stderr) and the arguments."""


@dataclass(frozen=True)
class Auditctl:
    binary: str = "auditctl"

    def run(self, args: list[str]) -> str:
        try:
            done = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=AUDITCTL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuditctlError(f"auditctl {' '.join(args)}: {exc}") from exc
        if done.returncode != 0:
            message = " ".join((done.stderr or done.stdout).split()) or f"exit code {done.returncode}"
            raise AuditctlError(f"auditctl {' '.join(args)}: {message}")
        return done.stdout

    def status(self) -> dict[str, int]:
        return parse_status(self.run(["-s"]))

    def rules(self) -> list[str]:
        """The loaded rules as `auditctl -l` lists them."""
        return [line for line in self.run(["-l"]).splitlines() if line.startswith("-")]

    def apply(self, settings: dict[str, int]) -> None:
        for name, value in settings.items():
            self.run([SETTINGS[name], str(int(value))])

    def delete_keys(self, keys: list[str]) -> None:
        """Delete every rule carrying one of these keys (none left is no error)."""
        for key in keys:
            if any(f"key={key}" in rule.split() for rule in self.rules()):
                self.run(delete_args(key))


def parse_status(text: str) -> dict[str, int]:
    """`auditctl -s` output (`name value` lines) as numbers; words after a number are dropped
    (`loginuid_immutable 0 unlocked`), lines without a number skipped."""
    status = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
            status[parts[0]] = int(parts[1])
    return status


def saved_settings(status: dict[str, int]) -> dict[str, int]:
    """The settings evt may change, as they are now."""
    return {name: status[name] for name in SETTINGS if name in status}


def restore(auditctl: Auditctl, saved: dict[str, int], keys: list[str]) -> list[str]:
    """Delete the run's rules, then put the settings back (enabled last: rules and limits
    can change while it is on). Every step is tried; returns what failed."""
    failures = []
    try:
        auditctl.delete_keys(keys)
    except AuditctlError as exc:
        failures.append(str(exc))
    for name in sorted(saved, key=lambda n: n == "enabled"):
        try:
            auditctl.apply({name: saved[name]})
        except AuditctlError as exc:
            failures.append(str(exc))
    return failures


def restore_recorded(record: dict) -> list[str]:
    """`evt cleanup`: restore what a killed run recorded (see the module's docstring)."""
    auditctl = Auditctl(record.get("auditctl", "auditctl"))
    return restore(auditctl, record.get("settings", {}), record.get("keys", []))


class StatusWatch:
    """Reads the kernel's audit status every `interval_s` on a thread while the units run:
    the largest backlog seen (records queued for auditd), and the last status."""

    def __init__(self, auditctl: Auditctl, interval_s: float):
        self.auditctl, self.interval_s = auditctl, interval_s
        self.backlog_max = 0
        self.last: dict[str, int] = {}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-status", daemon=True)

    def start(self) -> StatusWatch:
        self._thread.start()
        return self

    def read(self) -> dict[str, int]:
        try:
            status = self.auditctl.status()
        except AuditctlError:
            self.failures += 1
            return self.last
        self.last = status
        self.backlog_max = max(self.backlog_max, status.get("backlog", 0))
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=AUDITCTL_TIMEOUT_S)
