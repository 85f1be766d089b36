"""The trigger catalog: one YAML per event in triggers/, loaded into Trigger records.

A trigger says what one op does in each mode (a native action in evt.workload.actions, or a
script template in triggers/scripts/), what it needs from the host, the comm names its
own tooling runs under (for Tracee's --scope bypass filters) and its ground truth: which
probe sees the target event, how the run's marker tells ours from noise, how many
target events one op yields, and how that count relates to the Tracee event (RELATIONS).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import jinja2

from evt import host
from evt.config import yamlfile
from evt.config.spec import EVENT_NAME, MODES, validate_event_name
from evt.config.templating import render
from evt.errors import UsageError, brief
from evt.paths import TRIGGERS_DIR
from evt.verify.recorded import TraceeHook, Verified, parse_hook, parse_verified, verified_target
from evt.workload.marker import Marker, Target

MAX_TRIGGER_FILE_BYTES = 64 << 10  # the largest entry today is 1 KB
TASK_COMM_LEN = 15  # the kernel keeps 16 bytes of comm, one of them the NUL
# How a ground truth's count relates to the Tracee event it stands for.
# A trigger file declares one of the first three; `evt list` and events.csv show what
# `evt verify` measured at Tracee's hook where it was verified (evt/verify/recorded.py).
RELATIONS = {
    "exact": "verified at Tracee's hook on a stock kernel: exactly the declared count per op",
    "proxy": "a stand-in syscall the event follows from, for the stated reason",
    "unverified": "not (yet) verified at Tracee's hook, or a stand-in whose relation depends on the kernel build",
    "lower_bound": "verified at Tracee's hook: it sees more events per op than the declared count",
    "differs": "verified at Tracee's hook: it sees another count per op than the declared one",
    "no_event": "verified at Tracee's hook: the trigger made no event there",
}
DECLARED_RELATIONS = ("exact", "proxy", "unverified")


class CatalogError(UsageError):
    """A malformed or duplicate catalog entry: bad input (exit 2), like any file evt reads."""


def _keys(keys: set) -> str:
    """Unknown keys for a message: YAML keys may be numbers, dates or null, not only text."""
    return "[" + ", ".join(sorted(brief(k) for k in keys)) + "]"


@dataclass(frozen=True)
class Needs:
    binaries: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    kernel: tuple[str, ...] = ()
    arch: tuple[str, ...] = ()  # uname -m names; empty: any

    def merged(self, other: Needs) -> Needs:
        return Needs(*(tuple(dict.fromkeys(getattr(self, f) + getattr(other, f))) for f in NEEDS_KEYS))


NEEDS_KEYS = ("binaries", "capabilities", "kernel", "arch")


@dataclass(frozen=True)
class Mode:
    name: str
    needs: Needs
    target: Target
    action: str | None = None  # native: the evt.workload.actions action
    template: str | None = None  # script: the template under triggers/scripts/


@dataclass(frozen=True)
class Trigger:
    event: str
    description: str
    modes: dict[str, Mode]
    needs: Needs
    bypass_comms: tuple[str, ...]
    source: Path = field(compare=False)
    tracee_event: str = ""  # the name Tracee knows the event by, where it differs from `event`
    aliases: tuple[str, ...] = ()  # other names `evt trigger -e`/`evt stress -e` accept
    tracee_hook: TraceeHook | None = None  # the kernel function(s) Tracee attaches for the event
    verified: dict[str, list[Verified]] = field(default_factory=dict, compare=False)  # per mode

    @property
    def tracee_name(self) -> str:
        return self.tracee_event or self.event

    @property
    def default_mode(self) -> str:
        return "native" if "native" in self.modes else "script"

    def mode(self, name: str | None) -> Mode:
        name = name or self.default_mode
        if name not in self.modes:
            raise UsageError(f"event {self.event!r} has no {name} mode; its modes are: {', '.join(self.modes)}.")
        return self.modes[name]

    def script(self, mode: str | None, marker: Marker) -> str:
        """The mode's script rendered for one run, from the scripts beside this trigger's YAML."""
        template = self.mode(mode).template
        if template is None:
            raise UsageError(f"event {self.event!r} has no script in {mode or self.default_mode} mode")
        return render(template, self.source.parent / "scripts", event=self.event, marker=marker.as_dict())

    def mode_needs(self, mode: str | None) -> Needs:
        return self.needs.merged(self.mode(mode).needs)

    def unmet(self, mode: str | None = None) -> list[str]:
        """Why this trigger cannot run here in that mode; empty when it can."""
        needs = self.mode_needs(mode)
        reasons = [host.check_arch(needs.arch)]
        reasons += [host.check_binary(b) for b in needs.binaries]
        reasons += [host.check_capability(c) for c in needs.capabilities]
        reasons += [host.check_kernel_feature(k) for k in needs.kernel]
        return [r for r in reasons if r]

    def unmet_capabilities(self, mode: str | None, held: set[str], fix: str) -> list[str]:
        """The mode's capabilities that a unit holding `held` lacks (`fix`: how to grant them)."""
        reasons = [host.check_capability(c, held, fix) for c in self.mode_needs(mode).capabilities]
        return [r for r in reasons if r]

    def require(self, mode: str | None = None) -> None:
        reasons = self.unmet(mode)
        if reasons:
            raise UsageError(
                f"event {self.event!r} cannot run on this host in {mode or self.default_mode} mode: "
                f"{'; '.join(reasons)}. Install or grant what is missing (`make setup` installs the tools), "
                "or choose another mode or event (`evt list` shows what runs here)."
            )

    def bypass_flags(self) -> list[str]:
        """Tracee --scope filters hiding the trigger's own processes, as Tracee's Go evt prints them."""
        shell = os.path.basename(os.environ.get("SHELL", "") or "sh")
        comms: list[str] = []
        for comm in self.bypass_comms:
            comms.append(comm)
            if comm == "sh":
                comms.append(shell)
        flags: list[str] = []
        for comm in dict.fromkeys(c[:TASK_COMM_LEN] for c in comms):
            flags += ["-s", f"comm!={comm}"]
        return flags


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"{where}: expected a list of non-empty strings, got {brief(value)}")
    return tuple(value)


def _needs(raw: object, where: str) -> Needs:
    if raw is None:
        return Needs()
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping with {'/'.join(NEEDS_KEYS)}")
    unknown = set(raw) - set(NEEDS_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown keys {_keys(unknown)}; use {', '.join(NEEDS_KEYS)}")
    needs = Needs(*(_strings(raw.get(key), f"{where}.{key}") for key in NEEDS_KEYS))
    for cap in needs.capabilities:
        if cap not in host.CAPABILITIES:
            raise CatalogError(f"{where}.capabilities: unknown capability {brief(cap)}")
    for feature in needs.kernel:
        if feature not in host.KERNEL_FEATURES:
            raise CatalogError(
                f"{where}.kernel: unknown feature {brief(feature)}; known: {', '.join(host.KERNEL_FEATURES)}"
            )
    return needs


def _target(raw: object, where: str, native: bool, event: str) -> Target:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: missing target (probe, filter, per_op)")
    unknown = set(raw) - {"probe", "filter", "per_op", "per_op_is", "relation", "reason"}
    if unknown:
        raise CatalogError(
            f"{where}: unknown keys {_keys(unknown)}; use probe, filter, per_op, per_op_is, relation, reason"
        )
    per_op_is = raw.get("per_op_is", "exact" if native else "lower_bound")
    if per_op_is not in ("exact", "lower_bound") or (native and per_op_is != "exact"):
        raise CatalogError(
            f"{where}.per_op_is: expected exact or lower_bound (native ops are exact), got {brief(per_op_is)}"
        )
    probe, flt, per_op = raw.get("probe"), raw.get("filter"), raw.get("per_op")
    relation, reason = raw.get("relation"), raw.get("reason") or ""
    if not isinstance(probe, str) or not probe.startswith(("tracepoint:", "kprobe:", "rawtracepoint:")):
        raise CatalogError(
            f"{where}.probe: expected a bpftrace probe such as tracepoint:syscalls:sys_enter_openat, got {brief(probe)}"
        )
    if not isinstance(flt, str) or not flt.strip():
        raise CatalogError(f"{where}.filter: expected a bpftrace predicate, got {brief(flt)}")
    if not isinstance(per_op, int) or isinstance(per_op, bool) or per_op < 1:
        raise CatalogError(f"{where}.per_op: expected a positive integer, got {brief(per_op)}")
    if not isinstance(relation, str) or relation not in DECLARED_RELATIONS:
        raise CatalogError(
            f"{where}.relation: expected one of {', '.join(DECLARED_RELATIONS)} "
            f"(how the count relates to the Tracee event), got {brief(relation)}"
        )
    if not isinstance(reason, str) or (relation != "exact" and not reason.strip()):
        raise CatalogError(f"{where}.reason: a {relation} count needs the reason it stands for the event")
    target = Target(
        probe=probe,
        filter=flt.strip(),
        per_op=per_op,
        exact=per_op_is == "exact",
        relation=relation,
        reason=" ".join(reason.split()),
    )
    try:  # a placeholder the run cannot fill fails here, not in the middle of a run
        target.rendered(event, Marker("0" * 8))
    except (
        jinja2.TemplateError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
    ) as exc:  # what an expression can raise
        raise CatalogError(
            f"{where}.filter: {exc} in {brief(flt)}; "
            f"placeholders are event and marker.{{{', '.join(Marker('0').as_dict())}}}"
        ) from exc
    return target


def _mode(name: str, body: object, where: str, event: str, source: Path) -> Mode:
    """One mode of a trigger. `kprobe_target`, where given, replaces `target` on kernels with
    kprobes: the event's kernel function counted directly instead of a stand-in."""
    from evt.workload import actions as native  # the registry of native actions

    if name not in MODES:
        raise CatalogError(f"{where}: unknown mode; use {' or '.join(MODES)}")
    if not isinstance(body, dict):
        raise CatalogError(f"{where}: expected a mapping")
    extra = set(body) - {"action", "template", "needs", "target", "kprobe_target"}
    if extra:
        raise CatalogError(f"{where}: unknown keys {_keys(extra)}")
    needs = _needs(body.get("needs"), f"{where}.needs")
    target = _target(body.get("target"), f"{where}.target", native=(name == "native"), event=event)
    if "kprobe_target" in body:
        kprobe_target = _target(body["kprobe_target"], f"{where}.kprobe_target", native=(name == "native"), event=event)
        if host.check_kernel_feature("kprobes") is None:
            target = kprobe_target
    if name == "native":
        action = body.get("action")
        if not isinstance(action, str) or action not in native.ACTIONS:
            raise CatalogError(
                f"{where}.action: {brief(action)} is not an action of evt/workload/actions/ "
                f"({', '.join(sorted(native.ACTIONS))})"
            )
        return Mode(name, needs, target, action=action)
    template = body.get("template")
    if not isinstance(template, str) or not (source.parent / "scripts" / template).is_file():
        raise CatalogError(f"{where}.template: {brief(template)} is not a file in {source.parent / 'scripts'}")
    return Mode(name, needs, target, template=template)


TRIGGER_KEYS = {"event", "description", "needs", "bypass_comms", "modes", "tracee_event", "aliases",
                "tracee_hook", "verified"}  # fmt: skip


def _shown(name: object) -> str:
    """A mode's name for a message: as written when it is a short string."""
    return name if isinstance(name, str) and len(name) <= 60 else brief(name)


def _check_script_renders(trigger: Trigger, where: str) -> None:
    """A template that cannot render fails when the catalog loads, not in the middle of a run."""
    if "script" not in trigger.modes:
        return
    try:
        trigger.script("script", Marker("0" * 8))
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise CatalogError(
            f"{where}: modes.script.template: {trigger.modes['script'].template} does not render: {exc}"
        ) from exc


def parse_trigger(raw: object, source: Path) -> Trigger:
    """Validate one catalog entry; CatalogError names the file and the field."""
    where = source.name
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = set(raw) - TRIGGER_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {_keys(unknown)}")
    event = raw.get("event")
    if not isinstance(event, str) or not EVENT_NAME.fullmatch(event):
        raise CatalogError(f"{where}: event must match [a-z0-9_]+, got {brief(event)}")
    if source.stem != event:
        raise CatalogError(f"{where}: file name must be {event}.yaml (the event it triggers)")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise CatalogError(f"{where}: description missing")
    raw_modes = raw.get("modes")
    if not isinstance(raw_modes, dict) or not raw_modes:
        raise CatalogError(f"{where}: modes must map native and/or script to their definitions")
    modes = {
        name: _mode(name, body, f"{where}: modes.{_shown(name)}", event, source) for name, body in raw_modes.items()
    }
    names = _strings(raw.get("aliases"), f"{where}: aliases")
    tracee_event = raw.get("tracee_event") or ""
    for name in (*names, tracee_event):
        if name and (not isinstance(name, str) or not EVENT_NAME.fullmatch(name)):
            raise CatalogError(f"{where}: event names must match [a-z0-9_]+, got {brief(name)}")
    hook = parse_hook(raw["tracee_hook"], where) if "tracee_hook" in raw else None
    verified = parse_verified(raw.get("verified"), where, tuple(modes))
    modes = {
        name: replace(mode, target=verified_target(mode.target, verified.get(name, []))) for name, mode in modes.items()
    }
    bypass = _strings(raw.get("bypass_comms"), f"{where}: bypass_comms")
    if not bypass:
        raise CatalogError(f"{where}: bypass_comms missing (the comm names of the trigger's own processes)")
    trigger = Trigger(
        event=event,
        description=description.strip(),
        modes=modes,
        needs=_needs(raw.get("needs"), f"{where}: needs"),
        bypass_comms=bypass,
        source=source,
        tracee_event=tracee_event,
        aliases=names,
        tracee_hook=hook,
        verified=verified,
    )
    _check_script_renders(trigger, where)
    return trigger


def load_catalog(directory: Path = TRIGGERS_DIR) -> dict[str, Trigger]:
    """Every trigger in the directory, by event; refuses duplicates and malformed entries."""
    catalog: dict[str, Trigger] = {}
    stems = {p.stem for p in directory.glob("*.y*ml")}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        raw = yamlfile.load(path, path.name, MAX_TRIGGER_FILE_BYTES, CatalogError)
        event = raw.get("event") if isinstance(raw, dict) else None
        if isinstance(event, str) and event in catalog:
            raise CatalogError(
                f"{path.name}: duplicate trigger for event {event!r} (already in {catalog[event].source.name}); "
                "keep one file per event"
            )
        trigger = parse_trigger(raw, path)
        taken = stems | {a for t in catalog.values() for a in t.aliases}
        for name in trigger.aliases:
            if name in taken:
                raise CatalogError(
                    f"{path.name}: alias {brief(name)} is already an event or alias; names must be unique"
                )
        catalog[trigger.event] = trigger
    if not catalog:
        raise CatalogError(f"no triggers found in {directory}")
    return catalog


@lru_cache(maxsize=1)
def default_catalog() -> dict[str, Trigger]:
    return load_catalog()


def get_trigger(event: str, catalog: dict[str, Trigger] | None = None) -> Trigger:
    catalog = default_catalog() if catalog is None else catalog
    validate_event_name(event)
    aliased = next((t for t in catalog.values() if event in t.aliases), None)
    if aliased:
        return aliased
    if event not in catalog:
        close = difflib.get_close_matches(event, list(catalog), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UsageError(
            f"trigger for the event {event} does not exist: stat {TRIGGERS_DIR / (event + '.yaml')}: "
            f"no such file or directory\n{hint.strip() + ' ' if hint else ''}`evt list` shows every event."
        )
    return catalog[event]


def tracee_name(event: str) -> str:
    """The name Tracee knows an event by (the catalog's socked_dup is Tracee's socket_dup);
    names outside the catalog pass unchanged."""
    trigger = default_catalog().get(event)
    return trigger.tracee_name if trigger else event
