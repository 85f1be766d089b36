"""Orchestration emits events; listeners (console, log file) consume them.

Keeping what happened apart from how it is shown lets `evt stress` print to the
terminal and to evt.log from one place, and lets tests listen in.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Callable

Listener = Callable[[str, dict], None]


@dataclass
class EventBus:
    listeners: list[Listener] = field(default_factory=list)

    def emit(self, kind: str, message: str = "", **data: object) -> None:
        payload = dict(data, message=message)
        for listener in self.listeners:
            listener(kind, payload)


def console_listener(stream=None) -> Listener:
    def listen(kind: str, data: dict) -> None:
        if data.get("message"):
            out = stream or (sys.stderr if kind in ("error", "notice") else sys.stdout)
            print(data["message"], file=out, flush=True)

    return listen


def log_listener(logger: logging.Logger) -> Listener:
    def listen(kind: str, data: dict) -> None:
        extra = {k: v for k, v in data.items() if k != "message"}
        level = logging.ERROR if kind == "error" else logging.INFO
        logger.log(level, "%s: %s%s", kind, data.get("message", ""), f" {extra}" if extra else "")

    return listen
