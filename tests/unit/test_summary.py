"""summary.json as a typed record (evt.results.summary): the writer's files are byte for
byte those of the dict-building writer before it, a Summary written and read back is
itself, older schemas are read and newer ones refused, damaged keys are named."""

from __future__ import annotations

import json
import shutil
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

import summary_cases as cases
from evt.errors import UsageError
from evt.results import csvio, provenance, rundirs
from evt.results import writers as results
from evt.results.summary import (
    FLAG,
    NUMBER,
    SCHEMA_VERSION,
    TEXT,
    Detection,
    EvtVersion,
    Host,
    LossGate,
    Summary,
    TracerCost,
    TracerIdentity,
    Window,
)

FIXTURES = cases.FIXTURES


def _session_write(case: cases.Case, path) -> Summary:
    """What StressSession.write does with a run's results, into `path`."""
    workers = results.workers_frame(case.plan, case.results)
    events = results.events_frame(case.plan, case.results, case.report, scenario="smoke")
    summary = results.summarize(case.plan, workers, events, case.report, case.results, dict(case.extra), case.window)
    exit_code = case.exit_code
    if not results.apply_loss_gate(summary, case.max_loss_pct) and exit_code == 0:
        exit_code, summary.status = 1, "loss_exceeded"
    summary.exit_code = exit_code
    report_cpu = (case.report.cpu_s or 0.0) if case.report is not None and case.outside_evt else 0.0
    summary.cpu_outside_evt_s = (float(summary.workers_cpu_s or 0.0) if case.outside_evt else 0.0) + report_cpu
    csvio.write_json(summary.to_dict(), path)
    return summary


@pytest.mark.parametrize("case", cases.cases(), ids=lambda c: c.name)
def test_a_run_summary_is_written_byte_for_byte_as_before(tmp_path, case):
    summary = _session_write(case, tmp_path / "summary.json")
    assert (tmp_path / "summary.json").read_bytes() == (FIXTURES / f"{case.name}.json").read_bytes()
    assert Summary.read(tmp_path / "summary.json") == summary


@pytest.mark.parametrize("case", cases.early_cases(), ids=lambda c: c["name"])
def test_a_job_that_ended_early_is_written_byte_for_byte_as_before(tmp_path, case):
    cfg = OmegaConf.create({"run_id": case["run_id"], "tracer": {"name": "bpftrace"}})
    record = mock.Mock(return_value=dict(cases.PROVENANCE)) if case["provenance"] else mock.Mock(side_effect=KeyError)
    with (
        mock.patch.object(provenance, "record", record),
        mock.patch.object(provenance, "evt_version", lambda: cases.PROVENANCE["evt_version"]),
        mock.patch.object(provenance, "host", lambda: cases.PROVENANCE["host"]),
        mock.patch.object(provenance, "job_overrides", lambda: cases.PROVENANCE["overrides"]),
        mock.patch("evt.stress.request.scenario_names", lambda cfg: list(cases.PROVENANCE["scenario"])),
    ):
        results.write_failure_summary(cfg, tmp_path / "job", case["status"], case["failure"], case["exit_code"])
    text = (tmp_path / "job" / "summary.json").read_text().replace(str(tmp_path / "job"), "RUN_DIR")
    assert text == (FIXTURES / f"{case['name']}.json").read_text()
    summary = Summary.read(tmp_path / "job" / "summary.json")
    assert (summary.status, summary.exit_code, summary.has_figures) == (case["status"], case["exit_code"], False)


@pytest.mark.parametrize("name", ["real_run", "loss_exceeded", "no_tracer", "interrupted", "early_bad_input"])
def test_a_written_summary_read_and_written_again_is_the_same_bytes(tmp_path, name):
    """real_run.json is a run evt wrote on this machine (a tracer=none docker run)."""
    path = FIXTURES / f"{name}.json"
    assert json.dumps(Summary.read(path).to_dict(), indent=2, default=str) + "\n" == path.read_text()


def test_the_summary_reads_its_nested_records_as_types():
    summary = Summary.read(FIXTURES / "loss_exceeded.json")
    assert summary.schema_version == SCHEMA_VERSION and summary.tracer == TracerIdentity("tracee", "v0.24.1")
    window = Window(cpu_s=0.4, wall_s=2.0, cpu_avg_pct=20.0, cpu_p95_pct=35.0)
    assert summary.tracer_cost is not None and summary.tracer_cost.window == window
    assert (summary.tracer_cost.pprof_slices_collected, summary.tracer_cost.figure("peak_rss_kb")) == (2, 102400)
    assert summary.max_loss_pct == LossGate(limit=0.1, passed=False)
    assert (summary.status, summary.exit_code, summary.loss_pct) == ("loss_exceeded", 1, pytest.approx(100 * 10 / 390))
    assert summary.host is not None and summary.host.cpus == 2 and summary.evt_version is not None


def test_a_schema_1_run_directory_is_read_and_compared(tmp_path):
    """Before provenance (schema 1) `tracer` was a name and there was no schema_version."""
    run = tmp_path / "old"
    shutil.copytree(FIXTURES / "schema1-run", run)
    summary = rundirs.read_summary(run)
    assert summary.schema_version is None and summary.tracer == TracerIdentity("bpftrace", None)
    assert summary.evt_version is None and summary.host is None and summary.scenario is None
    assert summary.detection == Detection(expected=390, observed=370, lost=20, loss_pct=summary.loss_pct, exact=False)
    runs, events = rundirs.load(rundirs.locate(str(run)))
    row = runs.iloc[0]
    assert (row["status"], row["scenario"], row["whole"]) == ("ok", "unknown", True)
    assert row["tracer_cpu_s"] == pytest.approx(0.52) and row["peak_rss_bytes"] == 52428800  # process + BPF
    assert sorted(events["event"]) == ["ptrace", "security_file_open"]


def test_a_newer_schema_is_refused_naming_the_file(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "status": "ok"}))
    newer = rf"{tmp_path / 'summary.json'} has schema_version {SCHEMA_VERSION + 1}, newer than this evt reads"
    with pytest.raises(UsageError, match=newer):
        rundirs.read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": "two", "status": "ok"}))
    with pytest.raises(UsageError, match=r"schema_version is 'two', not a schema number"):
        Summary.read(tmp_path / "summary.json")


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"ok": "many"}, "summary.json: ok is 'many', not a number"),
        ({"detection": {"loss_pct": float("nan")}}, "summary.json: detection.loss_pct is nan, not a number"),
        ({"tracer_cost": {"window": [1]}}, "summary.json: tracer_cost.window is [1], not a JSON object"),
        ({"host": "x86_64"}, "summary.json: host is 'x86_64', not a JSON object"),
        ({"partial": "no"}, "summary.json: partial is 'no', not true or false"),
        ({"overrides": "a=1"}, "summary.json: overrides is 'a=1', not a list of text"),
        ({"schema_version": 2, "tracer": "bpftrace"}, "summary.json: tracer is 'bpftrace', not a JSON object"),
    ],
)
def test_a_key_of_the_wrong_kind_is_named(tmp_path, data, needle):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "ok", **data}))
    with pytest.raises(UsageError, match="the run's record is damaged") as error:
        Summary.read(tmp_path / "summary.json")
    assert needle in str(error.value)


def test_keys_this_evt_does_not_know_are_kept_and_written_last():
    data = {"status": "ok", "future_key": [1, 2], "run_id": "r", "tracer_cost": {"cpu_s": 1.0, "new_figure": 3}}
    summary = Summary.from_dict(data)
    assert summary.tracer_cost is not None and summary.tracer_cost.other == {"new_figure": 3}
    assert summary.other == {"future_key": [1, 2]}
    assert list(summary.to_dict()) == ["run_id", "tracer_cost", "status", "failure", "future_key"]


# -- round trip ---------------------------------------------------------------------------

texts = st.none() | st.text(max_size=8)
numbers = st.none() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False, allow_infinity=False)
flags = st.none() | st.booleans()
text_lists = st.none() | st.lists(st.text(max_size=5), max_size=3)
number_maps = st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.floats(allow_nan=False), max_size=3)


def _records(cls, **special):
    """A strategy for `cls` (each field of its kind), None or absent as a file may hold it."""
    kinds = {TEXT: texts, NUMBER: numbers, FLAG: flags}
    fields = {name: special[name] if name in special else kinds[kind] for name, kind in cls.kinds().items()}
    return st.builds(cls, **fields)


summaries = _records(
    Summary,
    tracer=st.none() | _records(TracerIdentity),
    detection=st.none() | _records(Detection),
    tracer_cost=st.none()
    | _records(
        TracerCost,
        lost=number_maps,
        metrics=number_maps,
        window=st.none() | _records(Window),
        pprof_errors=st.none() | st.lists(st.text(max_size=5), max_size=2),
    ),
    evt_version=st.none() | _records(EvtVersion),
    host=st.none() | _records(Host),
    max_loss_pct=st.none() | _records(LossGate),
    scenario=text_lists,
    overrides=text_lists,
    schema_version=st.none() | st.sampled_from([1, SCHEMA_VERSION]),
)


@pytest.mark.property  # examples per the Hypothesis profile: 60 in make test, 15 fast, 3,000 in make fuzz
@given(summaries)
def test_a_summary_written_and_read_back_is_itself(tmp_path_factory, summary):
    path = tmp_path_factory.mktemp("summary") / "summary.json"
    csvio.write_json(summary.to_dict(), path)
    assert Summary.read(path) == summary


def test_a_sweep_job_whose_summary_is_damaged_still_gets_a_row_saying_why(tmp_path):
    from evt.results import sweep

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "summary.json").write_text(json.dumps({"status": "ok", "ok": "many"}))
    row = sweep.job_row(tmp_path / "0", [])
    assert row["status"] == sweep.NO_RECORD and "summary.json: ok is 'many', not a number" in row["error"]
    (tmp_path / "0" / "summary.json").write_text((FIXTURES / "loss_exceeded.json").read_text())
    row = sweep.job_row(tmp_path / "0", [])
    assert (row["status"], row["ok"], row["lost"], row["tracer_cpu_s"]) == ("loss_exceeded", 290, 10, 1.25)
