"""Reading YAML files that come from outside evt's code (suite files, the trigger catalog).

Bounded on every axis a bad file could push: size (checked before reading), encoding
(UTF-8, refused with the byte offset otherwise), nesting depth (libyaml stops at 1000
levels; the pure-Python loader's RecursionError is turned into the same message), and
the messages (callers quote values with errors.brief: YAML aliases can make a small
file stand for a value whose repr is exponentially long).
"""

from __future__ import annotations

from pathlib import Path

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: fast, and refuses deep nesting itself


def load(path: Path, label: str, max_bytes: int, error: type[Exception]) -> object:
    """The parsed document of a YAML file; `error(message)` for anything that is not one.

    `label` names the file at the start of every message ("events file 'x.yaml'").
    """
    try:
        if not path.is_file():
            reason = "not found" if not path.exists() else "not a regular file"
            raise error(f"{label}: {reason}; give the path of a YAML file.")
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{label}: {size:,} bytes, over the limit of {max_bytes:,}; split it into smaller files.")
        with path.open("rb") as stream:  # the file may grow between stat and read
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{label}: cannot be read ({exc.strerror or exc}); check the path and its permissions.") from exc
    if len(data) > max_bytes:
        raise error(f"{label}: over the limit of {max_bytes:,} bytes; split it into smaller files.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{label}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8."
        ) from exc
    try:
        return yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise error(f"{label}: not valid YAML ({message}); fix the file.") from exc
    except RecursionError as exc:
        raise error(f"{label}: nested too deeply; fix the file.") from exc
