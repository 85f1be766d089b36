"""Native trigger actions: one op is a few syscalls made from Python, no shell, no exec.

One module per family (fs, net, proc, bpf), each ending with its ACTIONS list; the
registry below maps the names the catalog YAMLs refer to (`action: file_open`) to the
classes. setup() runs before the op loop, op() once per op (raising OSError on failure),
close() after it. Workers rename themselves to the run's marker comm only around the op
loop, so the setup and close syscalls are not counted as target events.
"""

from __future__ import annotations

from types import ModuleType

from evt.workload.actions import bpf, fs, net, proc
from evt.workload.actions.base import Action


def registry(*families: ModuleType) -> dict[str, type[Action]]:
    """Action name -> class, over the families' ACTIONS lists; a name given twice is refused."""
    found: dict[str, type[Action]] = {}
    for family in families:
        for cls in family.ACTIONS:
            if not cls.name or cls.name in found:
                raise ValueError(f"native action {cls.name!r} of {cls.__qualname__} registered twice or unnamed")
            found[cls.name] = cls
    return found


ACTIONS = registry(fs, net, proc, bpf)

__all__ = ["ACTIONS", "Action", "registry"]
