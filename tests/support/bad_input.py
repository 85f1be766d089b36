"""Bad `evt stress` input and the one-paragraph refusal each gets (exit 2, nothing created):
checked in-process by tests/unit/test_cli_stress.py and, with the containers a run would
leave, by tests/integration/test_cli_stress_refusals.py."""

BAD_STRESS_INPUT = [
    (
        ["-e", "security_file_open:foo=1"],
        'invalid event spec "security_file_open:foo=1": unknown key: "foo" \\(valid keys: instances, ops, sleep\\)',
    ),
    (["-e", ":ops=1"], 'invalid event spec ":ops=1": event name cannot be empty'),
    (["-e", "ptrace:ops"], 'invalid event spec "ptrace:ops": invalid key=value pair: "ops"'),
    (["-e", "ptrace:instances=0"], 'invalid event spec "ptrace:instances=0": instances must be greater than 0, got 0'),
    (["-e", "ptrace:ops=-3"], 'invalid event spec "ptrace:ops=-3": ops must be greater than 0, got -3'),
    (["-e", "ptrace:sleep=fast"], 'invalid event spec "ptrace:sleep=fast": invalid sleep duration "fast"'),
    (
        ["-e", "no_such_event"],
        "trigger for the event no_such_event does not exist: stat .*no_such_event.yaml: no such file or directory",
    ),
    (["-e", "security_file_opne"], "Did you mean security_file_open"),
    (["-e", "ptrace;rm"], "event names contain only lowercase"),
    (["scenario=nope"], "Could not find 'scenario/nope'"),
    (["--scenario", "nope"], 'scenario "nope" not found\nScenarios loaded: .*smoke'),
    (["--scenario", "smoke", "--all-scenarios"], "mutually exclusive"),
    (["--events-file", "/nonexistent/suite.yaml"], "/nonexistent/suite.yaml: No such file or directory"),
    (["-e", "ptrace", "--keep-tracee", "--auto-tracee=false"], "--keep-tracee requires --auto-tracee=true"),
    ([], "at least one event must be specified"),
    (
        ["-e", "security_bpf_prog:mode=script", "tracer=none", "runner.privileged=false"],
        "event 'security_bpf_prog' cannot run in its container .script mode."
        ": needs CAP_SYS_ADMIN: grant it with runner.cap_add",
    ),
    (["-e", "ptrace", "stress.timeout=later"], "invalid stress.timeout"),
    (
        ["-e", "ptrace:ops=2147483648"],
        'invalid ops value "2147483648": strconv.ParseInt: parsing "2147483648": '
        "value out of range\nops is at most 2147483647",
    ),
    (["-e", "ptrace", "stress.timeout=200h"], "longer than evt allows"),
    (["-e", "ptrace", "runner.image=${nope}"], "invalid configuration: Interpolation key 'nope' not found"),
    (
        ["-e", "ptrace", "tracer=tracee", "tracee.binary=/nonexistent/tracee"],
        'tracee binary not found at "/nonexistent/tracee"',
    ),
]
