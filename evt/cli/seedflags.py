"""The `evt stress` flags of Tracee's Go evt as Hydra overrides: one table, one config model.

`evt stress` and `evt bench` take every flag of Go evt's `evt stress`; each maps onto
exactly one config key, and Hydra's own flags pass through untouched.
"""

from __future__ import annotations

from evt.errors import UsageError

# Go evt's flags of `evt stress` ("seed flags" in --help) and the config key each sets: one table, one config model.
# kind: list (repeatable, appended), value (takes a value), bool (Go-style: --f, --f=false)
STRESS_FLAGS: dict[str, tuple[str, str]] = {
    "--events": ("list", "events"),
    "-e": ("list", "events"),
    "--events-file": ("list", "events_files"),
    "-E": ("list", "events_files"),
    "--scenario": ("list", "scenarios"),
    "--all-scenarios": ("bool", "all_scenarios"),
    "--image": ("value", "runner.image"),
    "--auto-tracee": ("bool", "tracee.auto"),
    "--keep-tracee": ("bool", "tracee.keep"),
    "--tracee-binary": ("value", "tracee.binary"),
    "--tracee-output": ("value", "tracee.output"),
    "--metrics": ("bool", "tracee.metrics"),
    "--pprof": ("bool", "tracee.pprof"),
    "--pyroscope": ("bool", "tracee.pyroscope"),
    "--wait-before-trigger": ("bool", "stress.wait_before_trigger"),
    "--signal-timeout": ("value", "stress.signal_timeout"),
    "--tracee-init-cooldown": ("value", "tracee.init_cooldown"),
    "--stress-end-cooldown": ("value", "stress.stress_end_cooldown"),
    "--dry-run": ("bool", "stress.dry_run"),
}
DURATION_KEYS = {"stress.signal_timeout", "tracee.init_cooldown", "stress.stress_end_cooldown"}
# Hydra's own flags, passed through untouched (the ones taking a value list it)
HYDRA_FLAGS = {
    "-m": False,
    "--multirun": False,
    "--cfg": True,
    "-c": True,
    "--package": True,
    "-p": True,
    "--info": False,
    "-i": False,
    "--resolve": False,
    "--help": False,
    "-h": False,
    "--hydra-help": False,
    "--run": False,
    "-r": False,
}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def stress_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split `evt stress` arguments into Hydra arguments and the overrides Go evt's flags
    stand for. Raises UsageError for unknown flags and bad values."""
    from evt.config.schema import quote_override
    from evt.config.spec import parse_duration

    hydra_args: list[str] = []
    lists: dict[str, list[str]] = {}
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, inline = token.partition("=")
        if token.startswith("-") and name in STRESS_FLAGS:
            kind, key = STRESS_FLAGS[name]
            if kind == "bool":
                value = inline if eq else "true"
                if value.lower() not in _BOOLS:
                    raise UsageError(f"invalid value {value!r} for {name}: use {name}, {name}=true or {name}=false.")
                overrides.append(f"{key}={'true' if _BOOLS[value.lower()] else 'false'}")
            else:
                if eq:
                    value = inline
                elif i + 1 < len(argv):
                    i += 1
                    value = argv[i]
                else:
                    raise UsageError(f"flag {name} needs a value (see `evt stress --help`).")
                if key in DURATION_KEYS:
                    parse_duration(value, name)
                if key == "events":  # a cobra string slice: a comma also separates specs
                    lists.setdefault(key, []).extend(v for v in value.split(",") if v)
                elif kind == "list":
                    lists.setdefault(key, []).append(value)
                else:
                    overrides.append(f"{key}={quote_override(value)}")
        elif token.startswith("-") and name in HYDRA_FLAGS:
            hydra_args.append(token)
            if HYDRA_FLAGS[name] and not eq and i + 1 < len(argv):
                i += 1
                hydra_args.append(argv[i])
        elif token.startswith("-"):
            raise UsageError(
                f"unknown flag {token!r} for evt stress; flags: {', '.join(sorted(STRESS_FLAGS))}, "
                "plus Hydra overrides such as scenario=smoke or tracee.pyroscope=true."
            )
        else:
            overrides.append(token)
        i += 1
    for key, values in lists.items():
        overrides.append(f"{key}=[{','.join(quote_override(v) for v in values)}]")
    return hydra_args, overrides


STRESS_HELP = (
    """usage: evt stress [overrides ...] [seed flags ...] [-m|--multirun] [--cfg job]

Run a stress test: units (one per event) start together, a tracer watches them, and the
results land in the Hydra run directory (outputs/DATE/RUN_ID/; a sweep's in multirun/DATE/ID/N/).

Overrides (Hydra): scenario=smoke  tracer=tracee|bpftrace|opensnoop|execsnoop|auditd|none  runner=docker|local
  events=[spec,...]  stress.instances=N  stress.ops=N  stress.sleep=DUR  stress.rate=N  stress.max_lag=DUR
  stress.mode=native|script  stress.max_loss_pct=X  tracee.pyroscope=true  auditd.backlog_limit=N
  hydra.run.dir=DIR  ... (`evt stress --cfg job` shows all)

Seed flags (each maps onto one override):
"""
    + "\n".join(f"  {flag:<24} -> {key}" for flag, (_, key) in STRESS_FLAGS.items())
    + """

Event spec: event[:instances=N:ops=N:sleep=dur|rate=N:mode=native|script]  (rate: ops/s per instance)
"""
)


BENCH_HELP = """usage: evt bench [overrides ...] [seed flags ...] [-m|--multirun] [--cfg job]

Find the highest event rate a tracer sustains with loss at or under a threshold: rounds
of evt stress at growing target rates (x2, then bisection, then repeats of the last good
and first bad rate), each beside a run without the tracer. Results (bench.csv, bench.json,
bench.png, rounds/) land in the Hydra run directory (outputs/bench/DATE/TIME/).

Overrides (Hydra): tracer=bpftrace|tracee|...  runner=docker|local
  bench.round_duration=5s  bench.start_rate=20000  bench.max_loss_pct=1  bench.precision=10
  bench.reach=0.95  bench.confirm=2  bench.max_rounds=20  bench.cooldown=1s
  events=[spec,...] (the workload; default security_file_open:instances=2, exactly
  counted events only)  ... (`evt bench --cfg job` shows all)
  Sweep: evt bench -m tracer=bpftrace,none

Seed flags as for evt stress (`evt stress --help`).
"""
