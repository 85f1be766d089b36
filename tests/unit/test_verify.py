"""`evt verify` without a VM: the catalog's hooks and recorded verdicts, the verdicts from
counts, the checker's program, the guest's request, and refusals of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from evt import host
from evt.errors import UsageError
from evt.paths import TRIGGERS_DIR
from evt.verify import checker, guest, kernels, recorded, results
from evt.verify.recorded import HookError, Verified, parse_hook, parse_verified, relation
from evt.workload import catalog
from evt.workload.catalog import load_catalog

KPROBE_ONLY = ("bpf_attach", "kallsyms_lookup_name", "kprobe_attach")


@pytest.fixture(scope="module")
def real():
    return load_catalog()


# -- the catalog's hooks and recorded results ---------------------------------------------


def test_every_trigger_names_its_tracee_hook(real):
    for trig in real.values():
        assert trig.tracee_hook is not None, trig.event
        assert trig.tracee_hook.probes, trig.event


def test_hooks_are_tracees_functions_not_syscall_tracepoints(real):
    hooks = {e: t.tracee_hook for e, t in real.items()}
    assert hooks["security_file_open"].probe == "kprobe:security_file_open"
    assert hooks["debugfs_create_file"].probe == "kprobe:__debugfs_create_file"
    assert hooks["ptrace"].probe == "kretprobe:__x64_sys_ptrace"
    assert hooks["kprobe_attach"].filter == "retval == 0"
    assert dict(hooks["bpf_attach"].filters)["kprobe:security_bpf"] == "arg0 == 28"
    assert hooks["bpf_attach"].blocks()[2] == ("kprobe:tracepoint_probe_register_prio_may_exist", "1")


def test_list_calls_exact_only_what_was_verified_exact_at_the_hook(real):
    for trig in real.values():
        for mode, body in trig.modes.items():
            verdicts = {v.verdict for v in trig.verified.get(mode, [])}
            if body.target.relation == "exact":
                assert "exact" in verdicts, (trig.event, mode)
            if "exact" in verdicts:
                assert body.target.relation == "exact", (trig.event, mode)


def test_kprobe_only_triggers_are_verified_in_the_vm(real):
    for event in KPROBE_ONLY:
        assert real[event].verified.get("script"), event
        assert all(v.verdict != "cannot_run" for v in real[event].verified["script"]), event


@pytest.mark.parametrize(
    "raw, message",
    [
        ("kprobe:x", "tracee_hook must be a mapping"),
        ({"probe": "uprobe:/bin/x:y"}, "expected bpftrace probes"),
        ({"probe": "kprobe:x", "color": 1}, "unknown keys"),
        ({"probe": "kprobe:x", "filter": 3}, "tracee_hook.filter: expected text"),
        ({"probe": "kprobe:x", "filters": {"kprobe:y": "arg0"}}, "tracee_hook.filters"),
    ],
)
def test_a_bad_hook_is_refused_with_its_field(raw, message):
    with pytest.raises(HookError, match=message):
        parse_hook(raw, "x.yaml")


@pytest.mark.parametrize(
    "raw, message",
    [
        (["debian-6.1"], "verified must map kernel names"),
        ({"Debian 6.1": {}}, "expected a kernel name"),
        ({"debian-6.1": {"native": {"verdict": "great"}}}, "with a verdict"),
        ({"debian-6.1": {"script": {"verdict": "exact"}}}, "expected a mode of this trigger"),
        ({"debian-6.1": {"native": {"verdict": "exact", "per_op": "one"}}}, "per_op: expected a number"),
    ],
)
def test_a_bad_verified_entry_is_refused(raw, message):
    with pytest.raises(HookError, match=message):
        parse_verified(raw, "x.yaml", ("native",))


def _v(verdict: str, kernel: str = "debian-6.1") -> Verified:
    return Verified(kernel, "6.1.0-57-cloud-amd64", "2026-12-02", verdict, 1)


@pytest.mark.parametrize(
    "declared, verified, shown",
    [
        ("exact", [], "unverified"),  # a claim never checked at the hook is not called exact
        ("proxy", [], "proxy"),
        ("exact", [_v("differs"), _v("exact", "debian-6.12")], "exact"),  # exact on some kernel
        ("proxy", [_v("lower_bound")], "lower_bound"),
        ("exact", [_v("no_event")], "no_event"),
        ("exact", [_v("cannot_run")], "unverified"),
    ],
)
def test_relation_shown_comes_from_the_hook(declared, verified, shown):
    assert relation(declared, verified) == shown


def test_record_rewrites_only_the_verified_entry(tmp_path):
    source = TRIGGERS_DIR / "ptrace.yaml"
    path = tmp_path / "ptrace.yaml"
    shutil.copy(source, path)
    shutil.copytree(TRIGGERS_DIR / "scripts", tmp_path / "scripts")
    before = [line for line in source.read_text().splitlines() if not line.startswith(("verified", "  ", "#"))]
    recorded.record(
        path, "debian-9.9", "9.9.0-1-cloud-amd64", "2030-01-01", {"native": {"verdict": "differs", "per_op": 2.0}}
    )
    recorded.record(
        path, "debian-9.9", "9.9.0-2-cloud-amd64", "2030-01-02", {"native": {"verdict": "exact", "per_op": 1.0}}
    )
    text = path.read_text()
    assert text.count(recorded.RECORD_COMMENT) == 1
    assert [line for line in text.splitlines() if not line.startswith(("verified", "  ", "#"))] == before
    data = yaml.safe_load(text)
    assert data["verified"]["debian-9.9"] == {
        "release": "9.9.0-2-cloud-amd64",
        "date": "2030-01-02",
        "native": {"verdict": "exact", "per_op": 1.0},
    }
    assert "debian-6.1" in data["verified"] or not yaml.safe_load(source.read_text()).get("verified")
    trig = catalog.parse_trigger(data, path)
    assert any(v.kernel == "debian-9.9" for v in trig.verified["native"])


# -- verdicts from counts -----------------------------------------------------------------


def _record(hook_counts, declared=1, per_op_is="exact", **extra) -> dict:
    return {
        "type": "case",
        "event": "e",
        "mode": "native",
        "ops": [5, 10],
        "hook": "kprobe:f",
        "declared_per_op": declared,
        "per_op_is": per_op_is,
        "runs": [{"ok": 5, "errors": 0}, {"ok": 10, "errors": 0}],
        "hook_counts": hook_counts,
        "ground_truth_counts": [5, 10],
        **extra,
    }


@pytest.mark.parametrize(
    "record, verdict",
    [
        (_record([7, 12]), "exact"),  # 2 of fixed cost per run cancel out: (12-7)/(10-5) = 1
        (_record([12, 22], per_op_is="lower_bound"), "lower_bound"),
        (_record([12, 22]), "differs"),
        (_record([0, 0]), "no_event"),
        (_record([3, 3]), "differs"),  # fired, but not per op
        (_record([5, 10], unrunnable="needs kprobes"), "cannot_run"),
        (_record([5, 10], hook_missing="__debugfs_create_file is not a function"), "cannot_run"),
        (_record([5, 10], runs=[{"ok": 0, "errors": 5, "first_error": "boom"}]), "cannot_run"),
    ],
)
def test_verdict_from_the_two_runs(record, verdict):
    assert results.verdict(record)[0] == verdict


def test_files_hold_a_row_per_case_and_regressions_are_named(tmp_path):
    table = results.rows("debian-6.1", "6.1.0-57-cloud-amd64", [_record([7, 12]), _record([0, 0])])
    frame = results.write(tmp_path, table, {"date": "2026-12-02"})
    assert list(frame["verdict"]) == ["exact", "no_event"]
    assert {"event", "mode", "hook", "declared_per_op", "measured_per_op", "verdict"} <= set(frame.columns)
    assert (tmp_path / "verify.json").is_file() and "| e | native |" in (tmp_path / "verify.md").read_text()
    found = results.regressions(table, {("debian-6.1", "e", "native"): "exact"})
    assert len(found) == 1 and "no_event" in found[0] and "recorded exact" in found[0]


# -- the checker's program and the guest's request ------------------------------------------


def test_program_counts_hook_and_ground_truth_per_phase(real):
    cases = checker.plan([real["security_file_open"], real["shared_object_loaded"]], None, None, "run-1")
    for case in cases:
        case.unrunnable = case.hook_missing = case.target_missing = ""  # this host may lack kprobes
    text = checker.program(cases)
    assert f"args->option == {checker.PHASE_PRCTL}" in text
    assert "@evt_phase[args->child_pid] = @evt_phase[args->parent_pid]" in text
    assert text.count("kprobe:security_file_open\n") == 1  # one block, both modes' checks in it
    assert "($phase == 1 || $phase == 2)" in text and "($phase == 3 || $phase == 4)" in text
    assert text.count("@evt_in_mmap[tid] = 1") == 1  # the prelude once
    assert [c.ops for c in cases] == [(5, 10), (1, 2), (1, 2)]


def test_a_case_that_cannot_run_is_left_out_of_the_program(real):
    cases = checker.plan([real["security_file_open"]], ("native",), 3, "run-1")
    cases[0].unrunnable = "needs a thing"
    assert "security_file_open native" not in checker.program(cases)
    assert cases[0].ops == (3, 6)


def test_request_survives_the_kernel_command_line():
    request = {"events": ["ptrace", "socked_dup"], "modes": None, "ops": 2, "run_id": "20261202-1-abc"}
    word = guest.encode_args(request)
    assert " " not in word and '"' not in word
    assert guest.decode_args(word) == request


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["debian-5", "linux-image-6.1.0-57-cloud-amd64; rm", "../x", ""])
def test_an_unknown_kernel_is_refused(name):
    with pytest.raises(UsageError, match="unknown kernel"):
        kernels.validate(name)


def test_a_known_kernel_or_package_is_taken():
    assert kernels.validate("debian-6.12") == "debian-6.12"
    assert kernels.validate("linux-image-6.12.117+deb12-cloud-amd64") == "linux-image-6.12.117+deb12-cloud-amd64"


def test_a_host_without_kprobes_says_how_in_one_line_and_starts_nothing(tmp_path, monkeypatch, capsys):
    from evt import cli
    from evt.stress import runstate

    monkeypatch.setattr(
        host, "check_kernel_feature", lambda f: "needs kprobes: no kprobe_events" if f == "kprobes" else None
    )
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path / "state")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot verify" in err and "--kernel debian-6.1" in err
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "--kernel", "debian-6.1", "-e", "no_such_event"], "does not exist"),
        (["verify", "--kernel", "debian-6.1", "--mode", "fast"], "invalid mode"),
        (["verify", "--kernel", "debian-6.1", "--ops", "0"], "greater than 0"),
        (["verify", "--kernel", "debian-6.1", "--accel", "hvf"], "invalid --accel"),
    ],
)
def test_bad_flags_exit_2_before_anything_starts(argv, message, tmp_path, monkeypatch, capsys):
    from evt import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()


def test_the_docs_hold_the_table_of_the_recorded_verdicts(real):
    readme = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    block = readme.split("<!-- verify-table -->\n", 1)[1].split("<!-- /verify-table -->", 1)[0]
    assert block == results.recorded_markdown(real), "regenerate it: evt verify --table"
