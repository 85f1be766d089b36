"""evt/stress/outcome.py: a run's status, partial flag, failure and exit code, derived in one
place from what happened, with the precedence summary.json and `evt stress` have always had."""

from __future__ import annotations

import pytest

from evt.stress.outcome import STATUSES, Outcome


def collected(**facts) -> Outcome:
    """A run whose phases all ran (the tracer collected)."""
    outcome = Outcome(**facts)
    outcome.tracer_collected()
    return outcome


def verdict(outcome: Outcome) -> tuple[str, int, bool, str | None]:
    return outcome.status, outcome.exit_code, outcome.partial, outcome.failure


def test_a_run_that_went_to_the_end_is_ok_and_whole():
    assert verdict(collected()) == ("ok", 0, False, None)


def test_a_run_that_has_not_been_collected_is_partial():
    assert verdict(Outcome()) == ("ok", 0, True, None)


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_interrupts_with_its_exit_code(signame, code):
    outcome = Outcome()
    outcome.interrupted(signame)
    assert verdict(outcome) == ("interrupted", code, True, None)


def test_an_interrupt_after_a_timeout_keeps_the_timeout_as_the_failure():
    outcome = Outcome()
    outcome.timeout("run timed out after 1s (stress.timeout)")
    outcome.interrupted("SIGINT")
    assert verdict(outcome) == ("interrupted", 130, True, "run timed out after 1s (stress.timeout)")


def test_an_error_fails_the_run_partially():
    outcome = Outcome()
    assert outcome.fail("units not waiting at the start barrier after 60s: ptrace")
    assert verdict(outcome) == ("failed", 1, True, "units not waiting at the start barrier after 60s: ptrace")


def test_the_first_failure_wins():
    outcome = collected()
    outcome.unit_failures("units failed: ptrace")
    assert not outcome.fail("a thread failed")
    outcome.cleanup_failure("units not removed: engine gone")
    assert verdict(outcome) == ("failed", 1, True, "units failed: ptrace")


def test_failed_units_fail_a_run_whose_figures_are_whole():
    outcome = collected()
    outcome.unit_failures("units failed: ptrace")
    assert verdict(outcome) == ("failed", 1, False, "units failed: ptrace")


def test_a_timeout_fails_the_run_and_leaves_it_partial():
    outcome = Outcome()
    outcome.timeout("run timed out after 1s (stress.timeout)")
    outcome.tracer_collected()
    assert verdict(outcome) == ("failed", 1, True, "run timed out after 1s (stress.timeout)")
    assert outcome.timed_out


def test_a_tracer_crash_is_its_own_status_unless_the_run_failed():
    outcome = Outcome()
    outcome.tracer_crashed("exit code 1")
    outcome.tracer_crashed("a later reason")
    outcome.tracer_collected()
    assert verdict(outcome) == ("tracer_crashed", 1, False, None) and outcome.crashed == "exit code 1"
    outcome.unit_failures("units failed: ptrace")
    assert verdict(outcome) == ("failed", 1, False, "units failed: ptrace")


def test_an_interrupt_outranks_a_tracer_crash():
    outcome = Outcome()
    outcome.tracer_crashed("exit code 1")
    outcome.interrupted("SIGTERM")
    assert verdict(outcome) == ("interrupted", 143, True, None)


def test_a_failed_cleanup_fails_even_an_interrupted_run_and_keeps_its_exit_code():
    outcome = Outcome()
    outcome.interrupted("SIGINT")
    outcome.cleanup_failure("units not removed: engine gone")
    assert verdict(outcome) == ("failed", 130, True, "units not removed: engine gone")


def test_a_failed_cleanup_makes_a_whole_run_partial():
    outcome = collected()
    outcome.cleanup_failure("units not removed: engine gone")
    assert verdict(outcome) == ("failed", 1, True, "units not removed: engine gone")


def test_the_loss_gate_fails_only_an_otherwise_ok_run():
    outcome = collected()
    outcome.loss_gate_failed()
    assert verdict(outcome) == ("loss_exceeded", 1, False, None)
    crashed = collected(crashed="exit code 1")
    crashed.loss_gate_failed()
    assert crashed.status == "tracer_crashed"


def test_results_that_could_not_be_written_fail_the_exit_code_but_not_the_status():
    outcome = collected()
    outcome.unwritten()
    assert (outcome.status, outcome.exit_code) == ("ok", 1)
    interrupted = Outcome()
    interrupted.interrupted("SIGTERM")
    interrupted.unwritten()
    assert interrupted.exit_code == 143


def test_every_status_is_a_known_one():
    outcomes = [Outcome(), collected(crashed="x"), Outcome(interrupted_by="SIGINT"), Outcome(failure="x")]
    loss = collected()
    loss.loss_gate_failed()
    assert {o.status for o in [*outcomes, loss]} == set(STATUSES)
