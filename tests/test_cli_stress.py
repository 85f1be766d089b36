"""`evt stress` command line: seed flags map onto the one config model; bad input exits 2
and creates nothing."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from evt.cli import STRESS_FLAGS, stress_overrides
from evt.config import quote_override
from evt.errors import UsageError
from helpers import compose_cfg, run_containers, run_evt


def as_dict(cfg):
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("flags, overrides", [
    (["--events", "ptrace:ops=5", "-e", "security_file_open"], ["events=['ptrace:ops=5','security_file_open']"]),
    (["--events-file", "a.yaml", "-E", "b.yaml"], ["events_files=['a.yaml','b.yaml']"]),
    (["--scenario", "smoke", "--scenario", "bpf"], ["scenarios=[smoke,bpf]"]),
    (["--all-scenarios"], ["all_scenarios=true"]),
    (["--image", "my-runner:test"], ["runner.image=my-runner:test"]),
    (["--auto-tracee=false"], ["tracee.auto=false"]),
    (["--keep-tracee"], ["tracee.keep=true"]),
    (["--tracee-binary", "/opt/tracee"], ["tracee.binary=/opt/tracee"]),
    (["--tracee-output", "json:/tmp/e.json"], ["tracee.output='json:/tmp/e.json'"]),
    (["--metrics=false", "--pprof=0", "--pyroscope"], ["tracee.metrics=false", "tracee.pprof=false", "tracee.pyroscope=true"]),
    (["--wait-before-trigger"], ["stress.wait_before_trigger=true"]),
    (["--signal-timeout", "2m"], ["stress.signal_timeout=2m"]),
    (["--tracee-init-cooldown=10s"], ["tracee.init_cooldown=10s"]),
    (["--stress-end-cooldown", "30s"], ["stress.stress_end_cooldown=30s"]),
    (["--dry-run"], ["stress.dry_run=true"]),
])
def test_seed_flags_give_the_same_config_as_their_overrides(flags, overrides):
    _, from_flags = stress_overrides(flags)
    assert as_dict(compose_cfg(*from_flags)) == as_dict(compose_cfg(*overrides))


def test_every_seed_flag_is_in_the_table():
    seed_flags = {"--events", "-e", "--events-file", "-E", "--scenario", "--all-scenarios", "--image",
                  "--auto-tracee", "--keep-tracee", "--tracee-binary", "--tracee-output", "--metrics", "--pprof",
                  "--pyroscope", "--wait-before-trigger", "--signal-timeout", "--tracee-init-cooldown",
                  "--stress-end-cooldown", "--dry-run"}
    assert seed_flags == set(STRESS_FLAGS)


def test_overrides_and_hydra_flags_pass_through():
    hydra_args, overrides = stress_overrides(["-m", "scenario=smoke", "--cfg", "job", "stress.instances=1,2"])
    assert hydra_args == ["-m", "--cfg", "job"]
    assert overrides == ["scenario=smoke", "stress.instances=1,2"]


@pytest.mark.parametrize("value", ["json:/tmp/it's,[x].json", "a'b\\c", "${oc.env:HOME}", "\\${x}", "end\\", "\\'"])
def test_values_are_quoted_so_hydra_never_parses_them(value):
    _, overrides = stress_overrides(["--tracee-output", value])
    assert compose_cfg(*overrides).tracee.output == value
    assert quote_override(value).startswith("'")


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unknown flag '--bogus'"),
    (["--metrics=maybe"], "invalid value 'maybe' for --metrics"),
    (["--signal-timeout", "soon"], "invalid --signal-timeout 'soon'"),
    (["--image"], "flag --image needs a value"),
])
def test_bad_flags(argv, message):
    with pytest.raises(UsageError, match=message):
        stress_overrides(argv)


def test_cfg_job_shows_the_composed_config():
    result = run_evt("stress", "scenario=smoke", "tracee.pyroscope=true", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "pyroscope: true" in result.stdout
    assert "security_file_open:instances=2:ops=5000" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["-e", "security_file_open:foo=1"], "unknown key 'foo'; valid keys are instances"),
    (["-e", ":ops=1"], "event name cannot be empty"),
    (["-e", "ptrace:ops"], "part 'ops' is not key=value"),
    (["-e", "ptrace:instances=0"], "instances in spec .* must be greater than 0"),
    (["-e", "ptrace:ops=-3"], "ops in spec .* must be greater than 0"),
    (["-e", "ptrace:sleep=fast"], "invalid sleep in spec"),
    (["-e", "no_such_event"], "trigger for the event no_such_event does not exist"),
    (["-e", "security_file_opne"], "Did you mean security_file_open"),
    (["-e", "ptrace;rm"], "event names contain only lowercase"),
    (["scenario=nope"], "Could not find 'scenario/nope'"),
    (["--scenario", "nope"], "unknown scenario 'nope'.*smoke"),
    (["--scenario", "smoke", "--all-scenarios"], "mutually exclusive"),
    (["--events-file", "/nonexistent/suite.yaml"], "not found"),
    (["-e", "ptrace", "--keep-tracee", "--auto-tracee=false"], "--keep-tracee requires --auto-tracee=true"),
    ([], "no events to run"),
    (["-e", "bpf_attach", "tracer=none"], "needs kprobes"),
    (["-e", "security_bpf_prog:mode=script", "tracer=none", "runner.privileged=false"],
     "event 'security_bpf_prog' cannot run in its container .script mode.: needs CAP_SYS_ADMIN: grant it with runner.cap_add"),
    (["-e", "ptrace", "stress.timeout=later"], "invalid stress.timeout"),
    (["-e", "ptrace", "tracer=tracee", "tracee.binary=/nonexistent/tracee"], 'tracee binary not found at "/nonexistent/tracee"'),
])
def test_bad_input_exits_2_with_one_message_and_creates_nothing(tmp_path, args, message):
    import re

    out = tmp_path / "out"
    run_id = f"badinput-{tmp_path.name[-20:]}"
    result = run_evt("stress", *args, f"run_id={run_id}", f"hydra.run.dir={out}")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert re.search(message, result.stderr), result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert not out.exists()
    if "kprobes" not in message:  # docker is up for these; nothing of this run exists
        assert run_containers(run_id) == []
