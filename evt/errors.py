"""Error types shared by every module.

UsageError is bad input: the CLI prints its message as one paragraph and exits 2 before
anything is started. RunError is a run that failed: exit 1.
"""

import reprlib

_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlist, _BRIEF.maxdict = 3, 60, 60, 5, 5


def brief(value: object) -> str:
    """A repr of user input short enough for a one-paragraph message, whatever it holds
    (a 1 MB argument, or a YAML alias standing for an exponentially long value)."""
    return _BRIEF.repr(value)


class UsageError(Exception):
    """Bad input from the user: exit code 2, nothing started."""


class RunError(Exception):
    """A run that started and failed: exit code 1."""
