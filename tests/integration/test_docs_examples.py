"""The `evt stress` and `evt bench` examples of README.md and docs/, each composed and
checked as the command would be: `evt stress ... --dry-run` (a sweep's every job), `evt
bench ... --cfg job`; the Ray launcher's on a local Ray (tests/support/doc_examples.py)."""

from __future__ import annotations

import pytest

from doc_examples import CHECKS, SLOW_KINDS, Example, check_dry_run, examples, workdir

pytestmark = pytest.mark.integration

SLOW = [e for e in examples() if e.kind in SLOW_KINDS - {"ray"}]
RAY = [e for e in examples() if e.kind == "ray"]
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.mark.parametrize("example", SLOW, ids=str)
def test_example(example: Example, tmp_path):
    CHECKS[example.kind](example, workdir(tmp_path))


@pytest.mark.parametrize("example", RAY, ids=str)
def test_ray_example(example: Example, tmp_path):
    check_dry_run(example, workdir(tmp_path), env=RAY_ENV)


def test_a_stress_example_with_a_bad_key_fails_its_check(tmp_path):
    with pytest.raises(AssertionError, match="exit 2"):
        check_dry_run(Example("x.md", "evt stress scenario=smoke stress.no_such_key=1"), workdir(tmp_path))
