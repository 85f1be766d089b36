"""`evt stress` command line: seed flags map onto the one config model; bad input exits 2
and creates nothing."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bad_input import BAD_STRESS_INPUT
from evt.cli.seedflags import STRESS_FLAGS, stress_overrides
from evt.config.schema import quote_override
from evt.errors import UsageError
from helpers import assert_one_paragraph, compose_cfg, unique_run_id
from inprocess import evt_main


def test_a_suite_file_that_is_not_utf8_exits_2_naming_the_byte(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_bytes(b"scenarios:\n  - name: a\n    events: [pt\xffrace]\n")
    result = evt_main("stress", "-E", str(suite), "tracer=none", "--dry-run", f"hydra.run.dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        result.stderr.strip() == f"Error: {suite}: not UTF-8 text (invalid byte 0xff at offset 38); save it as UTF-8."
    )


def as_dict(cfg):
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize(
    "flags, overrides",
    [
        (["--events", "ptrace:ops=5", "-e", "security_file_open"], ["events=['ptrace:ops=5','security_file_open']"]),
        # a cobra string slice: a comma separates specs too
        (
            ["-e", "ptrace:ops=5,security_file_open", "-e", "switch_task_ns"],
            ["events=['ptrace:ops=5','security_file_open','switch_task_ns']"],
        ),
        (["--events-file", "a.yaml", "-E", "b.yaml"], ["events_files=['a.yaml','b.yaml']"]),
        (["--scenario", "smoke", "--scenario", "bpf"], ["scenarios=[smoke,bpf]"]),
        (["--all-scenarios"], ["all_scenarios=true"]),
        (["--image", "my-runner:test"], ["runner.image=my-runner:test"]),
        (["--auto-tracee=false"], ["tracee.auto=false"]),
        (["--keep-tracee"], ["tracee.keep=true"]),
        (["--tracee-binary", "/opt/tracee"], ["tracee.binary=/opt/tracee"]),
        (["--tracee-output", "json:/tmp/e.json"], ["tracee.output='json:/tmp/e.json'"]),
        (
            ["--metrics=false", "--pprof=0", "--pyroscope"],
            ["tracee.metrics=false", "tracee.pprof=false", "tracee.pyroscope=true"],
        ),
        (["--wait-before-trigger"], ["stress.wait_before_trigger=true"]),
        (["--signal-timeout", "2m"], ["stress.signal_timeout=2m"]),
        (["--tracee-init-cooldown=10s"], ["tracee.init_cooldown=10s"]),
        (["--stress-end-cooldown", "30s"], ["stress.stress_end_cooldown=30s"]),
        (["--dry-run"], ["stress.dry_run=true"]),
    ],
)
def test_seed_flags_give_the_same_config_as_their_overrides(flags, overrides):
    _, from_flags = stress_overrides(flags)
    assert as_dict(compose_cfg(*from_flags)) == as_dict(compose_cfg(*overrides))


def test_every_seed_flag_is_in_the_table():
    seed_flags = {
        "--events",
        "-e",
        "--events-file",
        "-E",
        "--scenario",
        "--all-scenarios",
        "--image",
        "--auto-tracee",
        "--keep-tracee",
        "--tracee-binary",
        "--tracee-output",
        "--metrics",
        "--pprof",
        "--pyroscope",
        "--wait-before-trigger",
        "--signal-timeout",
        "--tracee-init-cooldown",
        "--stress-end-cooldown",
        "--dry-run",
    }
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bogus"], "unknown flag '--bogus'"),
        (["--metrics=maybe"], "invalid value 'maybe' for --metrics"),
        (["--signal-timeout", "soon"], "invalid --signal-timeout 'soon'"),
        (["--image"], "flag --image needs a value"),
    ],
)
def test_bad_flags(argv, message):
    with pytest.raises(UsageError, match=message):
        stress_overrides(argv)


def test_cfg_job_shows_the_composed_config():
    result = evt_main("stress", "scenario=smoke", "tracee.pyroscope=true", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "pyroscope: true" in result.stdout
    assert "security_file_open:instances=2:ops=5000" in result.stdout


@pytest.mark.parametrize("args, message", BAD_STRESS_INPUT)
def test_bad_input_exits_2_with_one_message_and_creates_nothing(tmp_path, monkeypatch, capsys, args, message):
    """In-process, with no Docker daemon to reach: a run that got as far as creating a
    container would fail otherwise (tests/integration/test_cli_stress_refusals.py runs the
    same with dockerd and checks no container is left)."""
    import re

    from evt.cli import main

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    out = tmp_path / "out"
    code = main(["stress", *args, f"run_id={unique_run_id('badinput')}", f"hydra.run.dir={out}"])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert re.search(message, stderr), stderr
    assert stderr.startswith("Error: ") and "Traceback" not in stderr
    assert not out.exists()


# -- properties (Hypothesis): seed flags and overrides reaching evt's keys -----------------


_VALUE_FLAGS = [flag for flag, (kind, _) in STRESS_FLAGS.items() if kind == "value"]
_awkward = st.text(alphabet=st.sampled_from("ab:/$'\"\\{}[],=% .\n\t-"), max_size=20)
_values = st.one_of(
    _awkward,
    st.text(max_size=20),
    st.integers(-(2**40), 2**40).map(str),
    st.sampled_from(["0", "1s", "169h", "nan", "inf", "-1", "true", "null", "[]", "{}", "${x}", "1e3", "٣"]),
)
_KEYS = [
    "stress.instances",
    "stress.ops",
    "stress.sleep",
    "stress.mode",
    "stress.signal_timeout",
    "stress.timeout",
    "stress.stress_end_cooldown",
    "stress.progress_interval",
    "stress.max_loss_pct",
    "stress.wait_before_trigger",
    "runner.image",
    "runner.ready_timeout",
    "runner.network",
    "tracee.init_cooldown",
    "bpftrace.stop_timeout",
    "run_id",
    "events",
    "scenarios",
    "scenario",
    "all_scenarios",
]
_override = st.one_of(
    st.tuples(st.sampled_from(_KEYS), _values).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(st.sampled_from(_KEYS), _values).map(lambda kv: f"{kv[0]}={quote_override(kv[1])}"),
    st.tuples(st.sampled_from(sorted(STRESS_FLAGS)), _values).map(lambda fv: f"{fv[0]}={fv[1]}"),
)


def validated(argv: list[str]):
    """What `evt stress ARGV` checks before it starts anything: the config, or UsageError."""
    from pathlib import Path

    from evt.cli.hydra_app import compose
    from evt.stress.session import StressSession

    _, overrides = stress_overrides(argv)
    cfg = compose([*overrides, "tracer=none", "runner=local", "stress.dry_run=true"])
    StressSession.prepare(cfg, Path("/nonexistent-run-dir"))
    return cfg


@pytest.mark.slow
@pytest.mark.property
@given(st.lists(_override, max_size=4))
@example(["stress.ops=99999999999"])
@example(["runner.image=${x}"])  # was an InterpolationKeyError traceback when read mid-run
@example(["runner.ready_timeout=fast"])  # was only parsed after the units had started
@example(["run_id=../../etc/x"])
@example(["stress.max_loss_pct=nan"])
@example(["stress.timeout=169h"])
@example(
    ["scenario=0"]
)  # Hydra's defaults list raised a ValueError (a traceback) for a group option that is not a name
def test_any_overrides_are_accepted_or_refused_before_anything_starts(overrides):
    try:
        cfg = validated(["-e", "ptrace:ops=1", *overrides])
    except UsageError as err:
        assert_one_paragraph(str(err))
        return
    loss = cfg.stress.max_loss_pct
    assert loss is None or 0 <= loss <= 100


@pytest.mark.slow
@pytest.mark.property
@given(st.sampled_from(_VALUE_FLAGS), st.text(max_size=30))
@example("--image", "\\${x}")
@example("--image", "a\\b")  # was doubled to a\\b
@example("--image", "${oc.env:HOME}")  # was interpolated to the home directory
@example("--image", "trailing\\\n")
def test_any_seed_flag_value_reaches_the_config_verbatim(flag, value):
    from evt.config.spec import parse_duration

    key = STRESS_FLAGS[flag][1]
    try:
        if key in {"stress.signal_timeout", "tracee.init_cooldown", "stress.stress_end_cooldown"}:
            parse_duration(value)
    except UsageError:
        with pytest.raises(UsageError):
            stress_overrides([flag, value])
        return
    _, overrides = stress_overrides([flag, value])
    assert OmegaConf.select(compose_cfg(*overrides), key) == value


@pytest.mark.slow
@pytest.mark.property
@given(st.lists(st.text(max_size=15), min_size=1, max_size=3))
def test_any_event_flags_reach_the_config_verbatim_and_in_order(values):
    argv = [token for value in values for token in ("-e", value)]
    _, overrides = stress_overrides(argv)
    # a cobra string slice, as in the original: a comma also separates specs, empty ones drop
    assert list(compose_cfg(*overrides).events) == [v for value in values for v in value.split(",") if v]
