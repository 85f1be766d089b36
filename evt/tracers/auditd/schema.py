"""tracer=auditd's schemas: its settings, the top-level section `auditd` (users type
auditd.backlog_limit=64, auditd.backlog_wait_time=0), and the tracer option that hands
them to AuditdTracer as `settings` (conf/tracer/auditd.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from evt.config.sections import plugin_section
from evt.tracers.schema import ProcessTracerConfig, TracerConfig

SECTION = "auditd"


@dataclass
class AuditdConfig(ProcessTracerConfig):
    """The audit daemon evt starts and the kernel's audit settings for the run
    (evt/tracers/auditd/). None keeps the kernel's current value; every value set is put
    back at the end."""

    binary: str = "auditd"
    auditctl: str = "auditctl"
    template: str = "auditd.conf.j2"  # the auditd.conf evt writes into the run's tracer/ directory
    ready_timeout: str = "30s"
    backlog_limit: int | None = None  # records queued in the kernel for auditd, at most
    # ms a process waits when the queue is full: 0 drops the record (loss), > 0 waits (overhead)
    backlog_wait_time: int | None = None
    rate_limit: int | None = None  # records/s, more are dropped; 0: no limit
    flush: str = "INCREMENTAL_ASYNC"  # auditd.conf flush: NONE | INCREMENTAL | INCREMENTAL_ASYNC | DATA | SYNC
    freq: int = 50  # records between flushes (INCREMENTAL, INCREMENTAL_ASYNC)
    status_interval: str = "100ms"  # how often the kernel's backlog is read while the units run


@dataclass
class AuditdTracerConfig(TracerConfig):
    name: str = "auditd"
    _target_: str = "evt.tracers.auditd.tracer.AuditdTracer"
    settings: Any = "${" + SECTION + "}"  # the top-level section


plugin_section(SECTION, AuditdConfig)
ConfigStore.instance().store(group="tracer", name="auditd_schema", node=AuditdTracerConfig)
