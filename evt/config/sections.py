"""Top-level config sections that plugins declare for their own settings.

A tracer whose settings users type as `<key>.*` (tracee.pyroscope=true,
bpftrace.mode=stream) declares them here from its own schema module (a `schema.py` in
evt/tracers/ or evt/runners/, found by evt.config.schema): the root config gets a
section `<key>` of that dataclass, present whichever tracer is chosen, so a sweep over
`tracer=tracee,bpftrace tracee.buffers.kernel_events=...` composes for every job. The
plugin's option (conf/tracer/<name>.yaml) hands the section to its class with
`settings: ${<key>}`. See docs/plugins.md.
"""

from __future__ import annotations

SECTIONS: dict[str, type] = {}  # top-level key -> its dataclass


def plugin_section(key: str, node: type) -> None:
    """Declare the top-level section `key` (a dataclass): a plugin's user-facing settings."""
    known = SECTIONS.get(key)
    if known is not None and known is not node:
        raise ValueError(f"config section {key!r} is declared twice ({known.__qualname__}, {node.__qualname__})")
    SECTIONS[key] = node
