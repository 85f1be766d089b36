"""One Jinja environment for every template evt renders (scripts, Tracee, bpftrace).

StrictUndefined: a template that names a value the caller did not pass fails loudly
instead of rendering an empty string into a command line.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from evt.paths import TEMPLATES_DIR


@lru_cache(maxsize=16)
def environment(search_path: Path) -> jinja2.Environment:
    """One per template directory, kept: it compiles each template once (and recompiles one
    whose file changed), where the catalog renders every script when it loads."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(search_path)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, search_path: Path = TEMPLATES_DIR, **context: object) -> str:
    return environment(search_path).get_template(template).render(**context)


@lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    """A string template compiled once per process: the catalog renders each of its filters
    when it loads, and every unit renders them again."""
    return _string_environment().from_string(source)


@lru_cache(maxsize=1)
def _string_environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined)


def render_string(source: str, **context: object) -> str:
    return _compiled(source).render(**context)
