"""What every native action is: set up once, one op per call, closed after the loop."""

from __future__ import annotations

import os

from evt.workload.marker import Marker


class Action:
    """One native trigger action, named as the catalog YAMLs refer to it (`action: <name>`);
    subclasses override op() and, where needed, setup/close."""

    name = ""

    def __init__(self, marker: Marker):
        self.marker = marker

    def setup(self) -> None:
        os.makedirs(self.marker.dir, exist_ok=True)

    def op(self) -> None:  # pragma: no cover - every registered action overrides it
        raise NotImplementedError

    def close(self) -> None:
        pass
