"""Every `evt ...` example in README.md and docs/ that runs without Hydra composing a
config: synopses against `--help`, `evt list` and `evt trigger` for real (small), and
`evt compare` on the inputs it names (tests/support/doc_examples.py says how each kind
runs; the `evt stress` and `evt bench` examples run in tests/integration/test_docs_examples.py)."""

from __future__ import annotations

import pytest

from doc_examples import CHECKS, SLOW_KINDS, Example, examples, workdir

QUICK = [e for e in examples() if e.kind not in SLOW_KINDS]


def test_the_pages_have_examples_of_every_kind():
    kinds = {e.kind for e in examples()}
    assert kinds == {"help", "run", "dry-run", "cfg", "compare", "ray"}, kinds
    assert len(examples()) >= 40


@pytest.mark.parametrize("example", QUICK, ids=str)
def test_example(example: Example, tmp_path):
    CHECKS[example.kind](example, workdir(tmp_path))


def test_a_flag_the_command_does_not_know_fails_the_help_check(tmp_path):
    with pytest.raises(AssertionError, match="does not know --no-such-flag"):
        CHECKS["help"](Example("x.md", "evt cleanup [--no-such-flag]"), workdir(tmp_path))


def test_a_trigger_example_that_fails_fails_its_check(tmp_path):
    with pytest.raises(AssertionError, match="exit 2"):
        CHECKS["run"](Example("x.md", "evt trigger --event security_file_open --ops 0"), workdir(tmp_path))
