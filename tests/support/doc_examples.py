"""The `evt ...` examples of README.md and docs/*.md, and how each is run so it cannot rot.

Every line of a fenced shell block that starts with `evt ` is an example (a trailing
`# comment` is dropped, `\\` continuations joined). How it runs depends on what it is:

- help: a synopsis (`[--tag T]`, `<path>`, `BASELINE`): `evt <command> --help` must list
  every `--flag` the line names;
- run: `evt list` and `evt trigger` run for real, ops capped at MAX_OPS; `--wait-signal`
  gets its SIGUSR1 once the trigger says it waits;
- dry-run: `evt stress` with `--dry-run` (the whole configuration is composed and checked,
  nothing started; Tracee is the stand-in at ./dist/tracee, and /path/to/tracee/dist/tracee);
- cfg: `evt bench` with `--cfg job` (composed and validated; a sweep's first value);
- compare: `evt compare` of the constructed perf-gate baseline and run the example names;
- ray: `evt stress -m hydra/launcher=ray ...` with `--dry-run`, on a local Ray (integration).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVT = str(Path(sys.executable).parent / "evt")
STANDIN = ROOT / "tests" / "support" / "tracee_standin.py"
MAX_OPS = 2000
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)?\n(.*?)```", re.S)
PLACEHOLDER = re.compile(r"[<>\[\]]|^[A-Z][A-Z_]{2,}$")
SLOW_KINDS = {"dry-run", "cfg", "ray"}  # compose Hydra configs: a second or more each, integration tests


@dataclass(frozen=True)
class Example:
    page: str
    line: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.line)

    @property
    def kind(self) -> str:
        words = self.argv
        if any(PLACEHOLDER.search(w) for w in words[1:]):
            return "help"
        if words[1] in ("list", "trigger"):
            return "run"
        if words[1] == "stress":
            return "ray" if "hydra/launcher=ray" in words else "dry-run"
        return {"bench": "cfg", "compare": "compare"}.get(words[1], "help")

    def __str__(self) -> str:
        return f"{self.page}: {self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[Example]:
    """Every example once (the first page that shows it)."""
    found: dict[str, Example] = {}
    for page in pages():
        for block in SHELL_BLOCK.findall(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                command = re.split(r"\s+#\s", line.strip())[0].strip()
                if command.startswith("evt "):
                    found.setdefault(" ".join(command.split()), Example(page.name, " ".join(command.split())))
    return list(found.values())


def workdir(tmp_path: Path) -> Path:
    """What the examples expect in the current directory: a suite file with scenarios
    `smoke` and `files`, and Tracee at ./dist/tracee (the stand-in, not Tracee)."""
    (tmp_path / "suite.yaml").write_text(
        "name: docs\nscenarios:\n"
        "  - {name: smoke, events: ['security_file_open:ops=10']}\n"
        "  - {name: files, groups: [{name: g, events: ['security_inode_unlink:ops=10']}]}\n"
    )
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tracee").symlink_to(STANDIN)
    return tmp_path


def run(argv: list[str], cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EVT, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {}))
    )


def check_help(example: Example, cwd: Path) -> None:
    words = example.argv
    command = words[1:3] if words[1] == "image" else words[1:2]
    done = run(["evt", *command, "--help"], cwd)
    assert done.returncode == 0, f"{example}: {done.stderr}"
    for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", example.line):
        assert flag in done.stdout, f"{example}: `evt {' '.join(command)} --help` does not know {flag}"


def capped(words: list[str]) -> list[str]:
    out = list(words)
    for i, word in enumerate(out[:-1]):
        if word in ("--ops", "-o"):
            out[i + 1] = str(min(int(out[i + 1]), MAX_OPS))
    return out


@lru_cache(maxsize=1)
def catalog() -> tuple[dict, ...]:
    return tuple(json.loads(run(["evt", "list", "--json"], ROOT).stdout))


def trigger_available(words: list[str]) -> bool:
    event = words[words.index("--event") + 1] if "--event" in words else words[words.index("-e") + 1]
    mode = words[words.index("--mode") + 1] if "--mode" in words else None
    entry = next(e for e in catalog() if e["event"] == event)
    return entry["available"][mode or entry["default_mode"]]


def run_waiting_trigger(words: list[str], cwd: Path) -> tuple[int, str]:
    """A trigger started with --wait-signal, sent SIGUSR1 once it says it waits."""
    proc = subprocess.Popen([EVT, *words[1:]], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.set_blocking(proc.stdout.fileno(), False)
    output, deadline = b"", time.monotonic() + 60
    try:
        while b"Waiting for start signal SIGUSR1" not in output:
            assert proc.poll() is None and time.monotonic() < deadline, output.decode()
            output += proc.stdout.read() or b""
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    os.set_blocking(proc.stdout.fileno(), True)
    return proc.returncode, (output + proc.stdout.read()).decode()


def check_run(example: Example, cwd: Path) -> None:
    words = capped(example.argv)
    if "--wait-signal" in words or "-w" in words:
        code, output = run_waiting_trigger(words, cwd)
    else:
        done = run(words, cwd)
        code, output = done.returncode, done.stdout + done.stderr
    expected = 0 if words[1] == "list" or trigger_available(words) else 2  # refused with the reason, exit 2
    assert code == expected, f"{example}: exit {code}\n{output[-3000:]}"


def dry_run_argv(example: Example, tmp_path: Path) -> list[str]:
    words = [w.replace("/path/to/tracee/dist/tracee", str(STANDIN)) for w in example.argv]
    sweep = "-m" in words or "--multirun" in words
    where = f"hydra.sweep.dir={tmp_path / 'sweep'}" if sweep else f"hydra.run.dir={tmp_path / 'run'}"
    return [*words, *([] if "--dry-run" in words else ["--dry-run"]), where]


def check_dry_run(example: Example, cwd: Path, env: dict | None = None) -> None:
    done = run(dry_run_argv(example, cwd), cwd, env=env)
    assert done.returncode == 0, f"{example}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert "Dry run mode - showing what would be executed:" in done.stdout, f"{example}: no plan printed"


def check_cfg(example: Example, cwd: Path) -> None:
    words = [w for w in example.argv if w not in ("-m", "--multirun")]
    words = [re.sub(r"^([\w.]+=)([^,\[]+),.*$", r"\1\2", w) for w in words]  # a sweep: its first value
    done = run([*words, "--cfg", "job"], cwd)
    assert done.returncode == 0, f"{example}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def check_compare(example: Example, cwd: Path) -> None:
    """The example's two paths, constructed: a perf-gate baseline file and a run whose
    figures equal it (same scenario and architecture), so the gate passes."""
    from run_records import write_run

    baseline, candidate = (Path(p) for p in example.argv[2:4])
    arch, _, scenario = baseline.stem.partition("-")
    figures = {"peak_rss_kb": 100_000, "avg_cpu_pct": 40.0, "p95_cpu_pct": 80.0}
    (cwd / baseline).parent.mkdir(parents=True)
    (cwd / baseline).write_text(json.dumps(figures))
    write_run(cwd / candidate, {"ptrace": (1000, 0.0)}, scenario=scenario, gate=figures, arch=arch)
    done = run(example.argv, cwd)
    assert done.returncode == 0, f"{example}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


CHECKS = {"help": check_help, "run": check_run, "dry-run": check_dry_run, "cfg": check_cfg, "compare": check_compare}
