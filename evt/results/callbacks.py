"""The Hydra callback that writes a sweep's tables when a multirun ends (conf/config.yaml
names it). Hydra instantiates its callbacks on every run, single runs included, so this
module stays light: the tables' code (pandas) is imported when a multirun ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    """Writes <sweep dir>/sweep.csv and sweep_events.csv when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from evt.results.sweep import write_tables

        sweep_dir = Path(config.hydra.sweep.dir)
        frame = write_tables(sweep_dir, list(config.hydra.overrides.task))
        failed = int((frame["status"] != "ok").sum())
        print(
            f"sweep: {len(frame)} jobs ({failed} not ok) in {sweep_dir / 'sweep.csv'} and "
            f"{sweep_dir / 'sweep_events.csv'}"
        )
