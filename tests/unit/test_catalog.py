"""The trigger catalog (evt/workload/catalog.py): the real one loads whole, bad ones are refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from evt import host
from evt.errors import UsageError
from evt.paths import TRIGGERS_DIR
from evt.workload import actions as native
from evt.workload import catalog
from evt.workload.catalog import CatalogError, Trigger, get_trigger, load_catalog
from evt.workload.marker import Marker

# The catalog of Tracee's Go evt (docs/tracee.md, "The trigger catalog").
ORIGINAL_EVENTS = {
    "arch_prctl",
    "sched_process_exec",
    "sched_process_exit",
    "security_file_open",
    "shared_object_loaded",
    "ptrace",
    "security_bpf_prog",
    "bpf_attach",
    "kprobe_attach",
    "kallsyms_lookup_name",
    "commit_creds",
    "socked_dup",
    "security_inode_symlink",
    "security_inode_unlink",
    "security_socket_connect",
    "security_socket_create",
    "security_socket_bind",
    "sched_process_fork",
    "process_execute_failed",
    "magic_write",
    "do_truncate",
    "debugfs_create_dir",
    "debugfs_create_file",
    "device_add",
    "security_sb_mount",
    "switch_task_ns",
    "security_path_notify",
}

MARKER = Marker.for_run("test-run", "x")


@pytest.fixture(scope="module")
def real() -> dict[str, Trigger]:
    return load_catalog()


def test_original_list_has_27_events():
    assert len(ORIGINAL_EVENTS) == 27


def test_real_catalog_holds_exactly_the_original_events(real):
    assert set(real) == ORIGINAL_EVENTS


def test_every_event_keeps_a_script_mode_like_the_original(real):
    assert [e for e, t in real.items() if "script" not in t.modes] == []


@pytest.mark.parametrize("event", sorted(ORIGINAL_EVENTS))
def test_real_trigger_is_complete(real, event):
    trig = real[event]
    assert trig.source == TRIGGERS_DIR / f"{event}.yaml"
    assert trig.description
    assert trig.default_mode == ("native" if "native" in trig.modes else "script")
    # the original's bypass comms: sh, evt and the script's own name
    assert {"sh", "evt", f"{event}.sh"} <= set(trig.bypass_comms)
    for name, mode in trig.modes.items():
        assert mode.target.per_op >= 1
        assert mode.target.exact or name == "script"  # native ops make exactly per_op events
        rendered = mode.target.rendered(event, MARKER)
        assert "{{" not in rendered.filter and "{%" not in rendered.filter
        if name == "native":
            assert mode.action in native.ACTIONS
            # native counts must be told apart by the run's marker, not by a shared comm
            assert "marker." in mode.target.filter, f"{event}: native filter does not use the marker"
        else:
            script = trig.script(name, MARKER)
            assert script.startswith("#!/bin/sh\n")
            check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
            assert check.returncode == 0, check.stderr


def test_target_rendering_fills_the_marker(real):
    target = real["security_file_open"].modes["native"].target
    rendered = target.rendered("security_file_open", MARKER)
    assert MARKER.file in rendered.filter and MARKER.comm in rendered.filter
    assert rendered.probe == target.probe and rendered.per_op == target.per_op
    magic = real["magic_write"].modes["script"].target.rendered("magic_write", MARKER)
    assert 'comm == "magic_write.sh"' in magic.filter


# -- lookups -----------------------------------------------------------------------------


def test_unknown_event_suggests_close_names(real):
    with pytest.raises(UsageError) as err:
        get_trigger("security_file_opn", real)
    assert "trigger for the event security_file_opn does not exist: stat " in str(err.value)
    assert "Did you mean security_file_open" in str(err.value)


def test_unknown_event_without_close_names(real):
    with pytest.raises(UsageError) as err:
        get_trigger("zzzz", real)
    assert "does not exist" in str(err.value) and "Did you mean" not in str(err.value)


def test_lookup_validates_the_name_first(real):
    with pytest.raises(UsageError, match="lowercase"):
        get_trigger("Ptrace", real)


def test_unknown_mode_names_the_modes(real):
    with pytest.raises(UsageError, match="has no native mode; its modes are: script"):
        real["arch_prctl"].mode("native")
    assert real["ptrace"].mode(None).name == "native"


# -- bypass flags ------------------------------------------------------------------------


def test_bypass_flags_cut_comms_and_add_the_shell(real, monkeypatch):
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    flags = real["security_inode_symlink"].bypass_flags()
    assert flags == ["-s", "comm!=sh", "-s", "comm!=zsh", "-s", "comm!=evt", "-s", "comm!=security_inode_"]
    assert all(len(f.split("!=", 1)[1]) <= 15 for f in flags[1::2])


def test_bypass_flags_short_names_are_kept_whole(real, monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/bash")
    assert real["ptrace"].bypass_flags() == [
        "-s",
        "comm!=sh",
        "-s",
        "comm!=bash",
        "-s",
        "comm!=evt",
        "-s",
        "comm!=ptrace.sh",
    ]


@pytest.mark.parametrize("shell", ["", "/bin/sh"])
def test_bypass_flags_without_a_shell_name_sh_once(real, monkeypatch, shell):
    monkeypatch.setenv("SHELL", shell)
    assert real["ptrace"].bypass_flags() == ["-s", "comm!=sh", "-s", "comm!=evt", "-s", "comm!=ptrace.sh"]


# -- bad catalogs ------------------------------------------------------------------------

GOOD = {
    "event": "ptrace",
    "description": "Process tracing events",
    "bypass_comms": ["sh", "evt", "ptrace.sh"],
    "modes": {
        "native": {
            "action": "ptrace",
            "target": {
                "probe": "tracepoint:syscalls:sys_enter_ptrace",
                "filter": 'comm == "{{ marker.comm }}"',
                "per_op": 1,
                "relation": "exact",
            },
        },
        "script": {
            "template": "true.sh.j2",
            "needs": {"binaries": ["strace"], "capabilities": ["CAP_SYS_PTRACE"]},
            "target": {
                "probe": "tracepoint:syscalls:sys_enter_ptrace",
                "filter": 'comm == "strace"',
                "per_op": 1,
                "relation": "exact",
            },
        },
    },
}


def make_catalog(directory: Path, entries: dict[str, object]) -> Path:
    """A catalog directory: file name -> YAML text or data; scripts/true.sh.j2 beside."""
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(TRIGGERS_DIR / "scripts" / "true.sh.j2", directory / "scripts" / "true.sh.j2")
    for name, body in entries.items():
        (directory / name).write_text(body if isinstance(body, str) else yaml.safe_dump(body))
    return directory


def variant(**changes) -> dict:
    """GOOD with dotted keys replaced (value None deletes the key)."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def test_a_good_catalog_loads(tmp_path):
    cat = load_catalog(make_catalog(tmp_path, {"ptrace.yaml": GOOD}))
    trig = cat["ptrace"]
    assert trig.modes["script"].needs.binaries == ("strace",)
    assert trig.mode_needs("script").capabilities == ("CAP_SYS_PTRACE",)
    assert trig.mode_needs("native").binaries == ()


def test_duplicate_events_are_refused(tmp_path):
    directory = make_catalog(tmp_path, {"ptrace.yaml": GOOD, "ptrace.yml": GOOD})
    with pytest.raises(
        CatalogError, match=r"ptrace.yml: duplicate trigger for event 'ptrace' \(already in ptrace.yaml\)"
    ):
        load_catalog(directory)


def test_a_copy_under_another_name_is_refused(tmp_path):
    directory = make_catalog(tmp_path, {"ptrace.yaml": GOOD, "ptrace_copy.yaml": GOOD})
    with pytest.raises(CatalogError, match="duplicate trigger for event 'ptrace'"):
        load_catalog(directory)


def test_empty_catalog_is_refused(tmp_path):
    with pytest.raises(CatalogError, match="no triggers found"):
        load_catalog(make_catalog(tmp_path, {}))


@pytest.mark.parametrize(
    "body, message",
    [
        ("event: [unclosed", "ptrace.yaml: not valid YAML"),
        ("- a list", "ptrace.yaml: expected a mapping"),
        (variant(color="red"), "unknown keys ['color']"),
        (variant(event="Ptrace"), "event must match [a-z0-9_]+"),
        (variant(event="strace"), "file name must be strace.yaml"),
        (variant(description=" "), "description missing"),
        (variant(modes={}), "modes must map native and/or script"),
        (variant(**{"modes.fast": {"action": "ptrace"}}), "modes.fast: unknown mode; use native or script"),
        (variant(**{"modes.native": "ptrace"}), "modes.native: expected a mapping"),
        (variant(**{"modes.native.speed": 3}), "modes.native: unknown keys ['speed']"),
        (variant(**{"modes.native.action": "teleport"}), "'teleport' is not an action of evt/workload/actions/"),
        (variant(**{"modes.script.template": "nope.sh.j2"}), "'nope.sh.j2' is not a file in"),
        (variant(**{"modes.native.target": None}), "modes.native.target: missing target"),
        (variant(**{"modes.native.target.probe": "syscalls:sys_enter_ptrace"}), "expected a bpftrace probe"),
        (variant(**{"modes.native.target.filter": ""}), "expected a bpftrace predicate"),
        (variant(**{"modes.native.target.filter": 'comm == "{{ marker.nope }}"'}), "modes.native.target.filter"),
        (variant(**{"modes.native.target.per_op": 0}), "per_op: expected a positive integer"),
        (variant(**{"modes.native.target.per_op": True}), "per_op: expected a positive integer"),
        (variant(**{"modes.native.target.per_op": "1"}), "per_op: expected a positive integer"),
        (variant(**{"modes.native.target.relation": None}), "relation: expected one of exact, proxy, unverified"),
        (variant(**{"modes.native.target.relation": "close"}), "relation: expected one of exact, proxy, unverified"),
        (variant(**{"modes.native.target.relation": "proxy"}), "reason: a proxy count needs the reason"),
        (variant(**{"modes.native.target.why": "x"}), "modes.native.target: unknown keys ['why']"),
        (variant(**{"modes.native.kprobe_target": {"probe": "kprobe:x"}}), "modes.native.kprobe_target.filter"),
        (variant(aliases=["Ptrace"]), "event names must match [a-z0-9_]+, got 'Ptrace'"),
        (variant(tracee_event="a b"), "event names must match [a-z0-9_]+, got 'a b'"),
        (variant(**{"modes.script.needs.arch": "x86_64"}), "expected a list of non-empty strings"),
        (variant(**{"modes.script.needs.capabilities": ["CAP_FLY"]}), "unknown capability 'CAP_FLY'"),
        (variant(**{"modes.script.needs.kernel": ["warp"]}), "unknown feature 'warp'"),
        (variant(**{"modes.script.needs.binaries": "strace"}), "expected a list of non-empty strings"),
        (variant(**{"modes.script.needs.packages": ["x"]}), "unknown keys ['packages']"),
        (variant(needs=["strace"]), "expected a mapping with binaries/capabilities/kernel"),
        (variant(bypass_comms=None), "bypass_comms missing"),
        (variant(bypass_comms=["sh", ""]), "expected a list of non-empty strings"),
    ],
)
def test_malformed_entries_are_refused(tmp_path, body, message):
    directory = make_catalog(tmp_path, {"ptrace.yaml": body})
    with pytest.raises(CatalogError) as err:
        load_catalog(directory)
    assert message in str(err.value)
    assert str(err.value).startswith("ptrace.yaml")  # names the file


def test_a_script_template_that_cannot_render_is_refused(tmp_path):
    directory = make_catalog(tmp_path, {"ptrace.yaml": GOOD})
    (directory / "scripts" / "true.sh.j2").write_text("#!/bin/sh\n{{ marker.nope }}\n")
    with pytest.raises(CatalogError, match=r"ptrace.yaml: modes.script.template: true.sh.j2 does not render: .*nope"):
        load_catalog(directory)


def test_scripts_render_from_their_own_catalog(tmp_path):
    directory = make_catalog(tmp_path, {"ptrace.yaml": GOOD})
    (directory / "scripts" / "true.sh.j2").write_text("#!/bin/sh\n# {{ event }} at {{ marker.dir }}\n")
    trig = load_catalog(directory)["ptrace"]
    assert trig.script("script", MARKER) == f"#!/bin/sh\n# ptrace at {MARKER.dir}\n"
    with pytest.raises(UsageError, match="has no script in native mode"):
        trig.script("native", MARKER)


# -- host requirements -------------------------------------------------------------------


def test_unmet_needs_name_what_is_missing(tmp_path):
    # no capability needed: as root or not, the binary is all that is missing
    body = variant(
        **{"modes.script.needs.binaries": ["evt-test-no-such-binary"], "modes.script.needs.capabilities": None}
    )
    trig = load_catalog(make_catalog(tmp_path, {"ptrace.yaml": body}))["ptrace"]
    assert trig.unmet("script") == ["evt-test-no-such-binary not installed"]
    with pytest.raises(UsageError) as err:
        trig.require("script")
    assert "cannot run on this host in script mode: evt-test-no-such-binary not installed" in str(err.value)
    assert "evt list" in str(err.value)


def test_trigger_level_needs_apply_to_every_mode(tmp_path):
    body = variant(needs={"binaries": ["evt-test-no-such-binary"]})
    trig = load_catalog(make_catalog(tmp_path, {"ptrace.yaml": body}))["ptrace"]
    assert trig.unmet("native") == trig.unmet("script")[:1] == ["evt-test-no-such-binary not installed"]


def test_default_catalog_is_the_real_one(real):
    assert catalog.default_catalog() == real


def test_needs_an_architecture(tmp_path):
    body = variant(**{"modes.script.needs": {"arch": ["evt_test_arch"]}})  # the architecture alone, on any host
    trig = load_catalog(make_catalog(tmp_path, {"ptrace.yaml": body}))["ptrace"]
    assert trig.unmet("script") == [f"needs evt_test_arch: this machine is {host.machine()}"]
    assert trig.unmet("native") == []


def test_arch_prctl_states_its_architecture(real):
    assert real["arch_prctl"].mode_needs("script").arch == ("x86_64",)


def test_capabilities_a_unit_lacks(real):
    bpf = real["security_bpf_prog"]
    assert bpf.unmet_capabilities("script", {"CAP_SETUID"}, "grant it") == ["needs CAP_SYS_ADMIN: grant it"]
    assert bpf.unmet_capabilities("native", {"CAP_SYS_ADMIN"}, "grant it") == []  # CAP_BPF split off SYS_ADMIN
    assert real["bpf_attach"].mode_needs("script").capabilities == ("CAP_SYS_ADMIN", "CAP_PERFMON", "CAP_BPF")


# -- count relation, Tracee names --------------------------------------------------------


@pytest.mark.parametrize("event", sorted(ORIGINAL_EVENTS))
def test_every_count_states_its_relation_to_the_tracee_event(real, event):
    for mode in real[event].modes.values():
        assert mode.target.relation in catalog.RELATIONS
        assert (mode.target.reason == "") == (mode.target.relation == "exact"), mode.target


def test_stand_in_counts_are_marked(real):
    """What `evt list` shows is what `evt verify` measured at Tracee's hook (recorded in the
    trigger files); a mode never measured there keeps its declared relation, an exact claim
    shown as unverified."""
    relations = {(e, m): mode.target.relation for e, t in real.items() for m, mode in t.modes.items()}
    assert relations[("debugfs_create_dir", "script")] == relations[("debugfs_create_file", "script")] == "no_event"
    assert relations[("security_file_open", "native")] == "exact"
    assert relations[("security_file_open", "script")] == "lower_bound"  # declared a proxy; the hook sees exec's opens
    for (event, mode), shown in relations.items():
        if not real[event].verified.get(mode):
            assert shown in ("proxy", "unverified"), (event, mode)


def test_kprobe_target_replaces_the_stand_in_where_the_kernel_has_kprobes(tmp_path, monkeypatch):
    body = variant(
        **{
            "modes.script.kprobe_target": {
                "probe": "kprobe:ptrace_attach",
                "filter": 'comm == "strace"',
                "per_op": 1,
                "relation": "exact",
            },
            "modes.script.target.relation": "unverified",
            "modes.script.target.reason": "a stand-in",
        }
    )
    directory = make_catalog(tmp_path, {"ptrace.yaml": body})
    with_kprobes = host.check_kernel_feature("kprobes") is None
    # declared exact, never verified at Tracee's hook: shown as unverified either way
    assert load_catalog(directory)["ptrace"].modes["script"].target.relation == "unverified"
    # the other kind of kernel, as host.check_kernel_feature would report it
    monkeypatch.setattr(host, "check_kernel_feature", lambda f: "needs kprobes: no" if with_kprobes else None)
    other = load_catalog(directory)["ptrace"].modes["script"].target
    assert (other.probe, other.relation) == (
        ("tracepoint:syscalls:sys_enter_ptrace", "unverified")
        if with_kprobes
        else ("kprobe:ptrace_attach", "unverified")
    )


def test_socked_dup_keeps_its_name_and_tells_tracee_socket_dup(real):
    trig = real["socked_dup"]
    assert trig.tracee_name == "socket_dup" and catalog.tracee_name("socked_dup") == "socket_dup"
    assert get_trigger("socket_dup", real) is trig
    assert catalog.tracee_name("ptrace") == "ptrace" and catalog.tracee_name("not_in_catalog") == "not_in_catalog"


def test_an_alias_may_not_shadow_an_event(tmp_path):
    other = variant(event="strace", aliases=["ptrace"])
    with pytest.raises(CatalogError, match="alias 'ptrace' is already an event or alias"):
        load_catalog(make_catalog(tmp_path, {"ptrace.yaml": GOOD, "strace.yaml": other}))


# -- properties (Hypothesis) ----------------------------------------------------------------


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))


GOOD_PATHS = [p for p in _paths(GOOD) if p]
_jinja = st.sampled_from(
    [
        'comm == "{{ marker.comm }}"',
        "{{ 1/0 }}",
        "{{ marker.nope }}",
        "{% if %}",
        "{{ event|int }}",
        "{{ marker['x'] }}",
        "{{ ''.join(1) }}",
        "{{",
        "}}",
        "{# #}",
    ]
)
_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 2**70),
        st.floats(),
        st.text(max_size=12),
        _jinja,
        st.sampled_from(["native", "script", "ptrace", "CAP_SYS_PTRACE", "kprobes", "tracepoint:x:y", "true.sh.j2"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()), inner, max_size=3),
    ),
    max_leaves=8,
)


def load_entry(directory: Path, data: bytes):
    make_catalog(directory, {})
    (directory / "ptrace.yaml").write_bytes(data)
    try:
        return load_catalog(directory)
    except CatalogError as err:
        assert isinstance(err, UsageError)  # the CLI's exit 2 with the message
        assert "\n" not in str(err) and len(str(err)) < 1000, str(err)
        return None


@pytest.mark.property
@given(st.sampled_from(GOOD_PATHS), _values)
@example(("modes", "native", "speed"), 3)
@example(("modes", "native", "target", "filter"), "{{ 1/0 }}")  # was a ZeroDivisionError traceback
@example(("modes", 1), {})  # a number as a key next to text keys: was a TypeError from sorted()
@example(("modes", "native", "target", "filter"), "{% if %}")
def test_any_change_to_an_entry_loads_or_is_refused(tmp_path_factory, path, value):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    cat = load_entry(tmp_path_factory.mktemp("c"), yaml.safe_dump(data, allow_unicode=True).encode())
    if cat is not None:
        assert set(cat) == {"ptrace"} and cat["ptrace"].modes


@pytest.mark.property
@given(st.binary(max_size=200))
@example(b"event: ptrace\n\xff")
@example(b"[" * 2000)
def test_any_bytes_as_an_entry_load_or_are_refused(tmp_path_factory, data):
    load_entry(tmp_path_factory.mktemp("b"), data)


def test_a_catalog_entry_over_the_size_bound_is_refused(tmp_path):
    big = (yaml.safe_dump(GOOD) + "#" * catalog.MAX_TRIGGER_FILE_BYTES).encode()
    assert load_entry(tmp_path, big) is None
    with pytest.raises(CatalogError, match=r"ptrace.yaml: .* over the limit of 65,536"):
        load_catalog(tmp_path)
