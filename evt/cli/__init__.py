"""The command line: argument wiring, Go evt's flags as overrides, the Hydra app,
crash reporting and the run log."""

from evt.cli.commands import main

__all__ = ["main"]
