"""Error types shared by every module.

UsageError is bad input: the CLI prints its message as one paragraph and exits 2 before
anything is started. RunError is a run that failed: exit 1.
"""


class UsageError(Exception):
    """Bad input from the user: exit code 2, nothing started."""


class RunError(Exception):
    """A run that started and failed: exit code 1."""
