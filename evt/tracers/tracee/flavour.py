"""Which Tracee evt drives: upstream `main` or a v0.24.x release, and what differs.

Tracee's `main` (unreleased after v0.24.1) changed interfaces evt depends on
(docs/tracee.md, "Tracee today"): buffers are `--buffers key=value` (v0.24.x:
`--perf-buffer-size`, `--blob-perf-buffer-size`, `--pipeline-channel-size`), output
has `destinations.*`/`streams.*` (v0.24.x: `json:<path>`), and the pidfile
`<install-path>/tracee.pid` is gone (v0.24.x still writes it). `tracee.flavour=auto`
asks the binary (`tracee version` prints `Tracee version: <v>`); a plain release tag up
to v0.24 is `v0.24`, anything else (a build past the tag, a newer release, no answer)
is `main`. Everything both flavours share (readiness = `/healthz` 200 with body `OK`,
the final scrape before SIGTERM, both metric generations) needs no flavour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evt.errors import UsageError
from evt.procs import command_version

FLAVOURS = ("auto", "main", "v0.24")
_RELEASE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Flavour:
    name: str  # main | v0.24
    version: str | None = None  # what the binary said, when asked

    @property
    def legacy(self) -> bool:
        return self.name == "v0.24"

    @property
    def output_syntax(self) -> str:
        """The output syntax tracee.output_syntax=auto means for this flavour."""
        return "legacy" if self.legacy else "destinations"


def flavour_of_version(text: str) -> str:
    """`main` or `v0.24` from what `tracee version` printed."""
    words = text.strip().removeprefix("Tracee version:").split()
    version = words[0] if words else ""
    match = _RELEASE.fullmatch(version)
    if match and (int(match.group(1)), int(match.group(2))) <= (0, 24):
        return "v0.24"
    return "main"


def ask_version(binary: str) -> str | None:
    """What `<binary> version` prints (first line), or None when it cannot say."""
    return command_version([binary, "version"])


def detect(setting: str, binary: str) -> Flavour:
    """tracee.flavour resolved: as given, or (auto) from the binary's version."""
    setting = str(setting)
    if setting not in FLAVOURS:
        raise UsageError(
            f"invalid tracee.flavour {setting!r}: use auto (ask the binary), main (Tracee's main branch) "
            "or v0.24 (the v0.24.x releases)."
        )
    if setting != "auto":
        return Flavour(setting)
    said = ask_version(binary)
    return Flavour(flavour_of_version(said) if said else "main", said)
