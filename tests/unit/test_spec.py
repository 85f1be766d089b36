"""Go-style durations and event specs (evt/config/spec.py), rule by rule."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from evt.config.spec import (
    INT64_MAX,
    MAX_COUNT,
    MAX_DURATION_NS,
    EventSpec,
    format_duration,
    parse_duration,
    parse_spec,
    positive_int,
    validate_event_name,
    validate_mode,
)
from evt.errors import UsageError
from helpers import assert_one_paragraph


@pytest.mark.parametrize(
    "text, ns",
    [
        ("0", 0),
        ("0s", 0),
        ("10ns", 10),
        ("500us", 500_000),
        ("500µs", 500_000),  # U+00B5 MICRO SIGN, as Go prints it
        ("500μs", 500_000),  # U+03BC GREEK SMALL LETTER MU, also accepted by Go
        ("1ms", 1_000_000),
        ("1.5s", 1_500_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("2m", 120_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1h0m0.25s", 3_600_250_000_000),
        ("1s500ms", 1_500_000_000),
        ("1.000000001s", 1_000_000_001),
        (" 3s ", 3_000_000_000),
    ],
)
def test_parse_duration_accepts_go_syntax(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    "text", ["", "10", "1x", "s", ".s", "1 s", "-1s", "+1s", "1s 2m", "ms10", "1.2.3s", "abc", "1e3s"]
)
def test_parse_duration_refuses_non_go_syntax(text):
    with pytest.raises(UsageError) as err:
        parse_duration(text, "sleep")
    message = str(err.value)
    assert f"invalid sleep {text!r}" in message
    assert "10ns" in message and "1h30m" in message  # shows what valid input looks like


@pytest.mark.parametrize(
    "ns, text",
    [
        (0, "0s"),
        (10, "10ns"),
        (999, "999ns"),
        (1_000, "1µs"),
        (1_500, "1.5µs"),
        (1_000_000, "1ms"),
        (2_500_000, "2.5ms"),
        (1_000_000_000, "1s"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (5_400_000_000_000, "1h30m0s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
        (-1_500_000_000, "-1.5s"),
        (-10, "-10ns"),
    ],
)
def test_format_duration_matches_go(ns, text):
    assert format_duration(ns) == text


@pytest.mark.parametrize(
    "ns", [0, 10, 1_500, 2_500_000, 1_500_000_000, 90_000_000_000, 5_400_000_000_000, 3_723_000_000_001]
)
def test_format_then_parse_round_trips(ns):
    assert parse_duration(format_duration(ns)) == ns


# -- event names -------------------------------------------------------------------------


def test_empty_event_name_is_refused():
    with pytest.raises(UsageError, match="event name cannot be empty"):
        validate_event_name("")


def test_comma_in_event_is_refused_with_a_hint():
    with pytest.raises(UsageError) as err:
        validate_event_name("security_file_open,ptrace")
    assert str(err.value) == (
        "multiple events not supported in a single --event flag: use separate 'evt trigger' commands "
        "for each event, or use 'evt stress' for multiple concurrent events"
    )


@pytest.mark.parametrize("name", ["Security_file_open", "ptrace-x", "a b", "x;rm -rf /", "é", "a/b", "ptrace\n"])
def test_event_names_outside_the_alphabet_are_refused(name):
    with pytest.raises(UsageError, match="lowercase letters, digits and underscores"):
        validate_event_name(name)


@pytest.mark.parametrize("name", ["ptrace", "security_file_open", "a1_2"])
def test_valid_event_names_pass(name):
    assert validate_event_name(name) == name


# -- specs -------------------------------------------------------------------------------


def test_spec_defaults_follow_the_original():
    spec = parse_spec("ptrace")
    assert spec == EventSpec("ptrace", instances=1, ops=100, sleep="10ns", mode=None)
    assert spec.sleep_ns == 10
    assert spec.total_ops == 100


def test_spec_long_and_short_keys():
    long = parse_spec("security_file_open:instances=4:ops=1000:sleep=1ms:mode=script")
    short = parse_spec("security_file_open:i=4:o=1000:s=1ms:m=script")
    assert long == short == EventSpec("security_file_open", 4, 1000, "1ms", "script")
    assert long.total_ops == 4000
    assert long.sleep_ns == 1_000_000
    assert str(long) == "security_file_open:instances=4:ops=1000:sleep=1ms:mode=script"
    assert parse_spec(str(long)) == long


def test_spec_rate_instead_of_sleep():
    spec = parse_spec("security_file_open:i=2:o=50:rate=2500")
    assert (spec.rate, spec.pace_args) == (2500.0, ["--rate", "2500.0"])
    assert parse_spec("security_file_open:r=0.5").rate == 0.5
    assert str(spec) == "security_file_open:instances=2:ops=50:rate=2500"
    assert parse_spec(str(spec)) == spec
    assert parse_spec("ptrace:sleep=1ms").pace_args == ["--sleep", "1ms"]


def test_spec_max_lag_with_a_rate():
    spec = parse_spec("security_file_open:rate=50000:max_lag=50ms")
    assert (spec.max_lag, spec.pace_args) == ("50ms", ["--rate", "50000.0", "--max-lag", "50ms"])
    assert str(spec) == "security_file_open:instances=1:ops=100:rate=50000:max_lag=50ms"
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text, needle",
    [
        ("ptrace:rate=1000:sleep=1ms", "rate= and sleep= given together"),
        ("ptrace:s=1ms:r=5", "rate= and sleep= given together"),
        ("ptrace:rate=0", 'invalid event spec "ptrace:rate=0": rate must be a positive number'),
        ("ptrace:rate=fast", "got 'fast'"),
        ("ptrace:max_lag=5ms", "max_lag= given without rate="),
        ("ptrace:rate=5:max_lag=later", "invalid max_lag"),
    ],
)
def test_spec_bad_rate(text, needle):
    with pytest.raises(UsageError, match=re.escape(needle)):
        parse_spec(text)


def test_spec_later_key_wins():
    assert parse_spec("ptrace:ops=5:o=7").ops == 7


@pytest.mark.parametrize("text", ["", ":ops=5", "  :i=2"])
def test_spec_with_empty_event_name(text):
    with pytest.raises(UsageError, match="event name cannot be empty"):
        parse_spec(text)


@pytest.mark.parametrize("text, part", [("ptrace:ops", "ops"), ("ptrace:ops=1:5", "5"), ("ptrace:", "")])
def test_spec_part_without_equals(text, part):
    with pytest.raises(UsageError) as err:
        parse_spec(text)
    assert str(err.value).startswith(f'invalid event spec "{text}": invalid key=value pair: "{part}"\n')


@pytest.mark.parametrize("key, field", [("instances", "instances"), ("i", "instances"), ("ops", "ops"), ("o", "ops")])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_spec_counts_must_be_positive(key, field, value):
    with pytest.raises(UsageError) as err:
        parse_spec(f"ptrace:{key}={value}")
    assert str(err.value) == f'invalid event spec "ptrace:{key}={value}": {field} must be greater than 0, got {value}'


@pytest.mark.parametrize("key, field, func", [("i", "instances", "strconv.Atoi"), ("o", "ops", "strconv.ParseInt")])
@pytest.mark.parametrize("value", ["abc", "1.5", "", "1e3"])
def test_spec_counts_that_are_not_integers_get_gos_parse_error(key, field, func, value):
    with pytest.raises(UsageError) as err:
        parse_spec(f"ptrace:{key}={value}")
    assert str(err.value) == (
        f'invalid event spec "ptrace:{key}={value}": invalid {field} value "{value}": '
        f'{func}: parsing "{value}": invalid syntax'
    )


def test_spec_ops_are_an_int32_as_in_the_original():
    assert parse_spec("ptrace:ops=2147483647").ops == 2**31 - 1
    with pytest.raises(UsageError) as err:
        parse_spec("ptrace:ops=2147483648")
    assert str(err.value).split("\n")[0] == (
        'invalid event spec "ptrace:ops=2147483648": invalid ops value "2147483648": '
        'strconv.ParseInt: parsing "2147483648": value out of range'
    )
    assert parse_spec("ptrace:instances=2147483648").instances == 2**31  # a Go int


@pytest.mark.parametrize(
    "value, cause",
    [
        ("10", 'time: missing unit in duration "10"'),
        ("fast", 'time: invalid duration "fast"'),
        ("1 ms", 'time: invalid duration "1 ms"'),
        ("-1s", 'time: invalid duration "-1s"'),
        ("", 'time: invalid duration ""'),
    ],
)
def test_spec_bad_sleep(value, cause):
    with pytest.raises(UsageError) as err:
        parse_spec(f"ptrace:sleep={value}")
    first_line, hint = str(err.value).split("\n")  # the original's words, then evt's hint
    assert first_line == f'invalid event spec "ptrace:sleep={value}": invalid sleep duration "{value}": {cause}'
    assert "expected a Go duration such as 10ns" in hint


def test_spec_unknown_key_lists_valid_keys():
    with pytest.raises(UsageError) as err:
        parse_spec("ptrace:count=5")
    first, hint = str(err.value).split("\n")
    assert first == 'invalid event spec "ptrace:count=5": unknown key: "count" (valid keys: instances, ops, sleep)'
    assert "rate (r)" in hint and "mode (m)" in hint


def test_spec_bad_mode():
    with pytest.raises(UsageError, match="use native or script"):
        parse_spec("ptrace:mode=fast")


@pytest.mark.parametrize("text", ["Ptrace:ops=1", "pt-race", "a,b:ops=1"])
def test_spec_event_name_rules_apply(text):
    with pytest.raises(UsageError, match="invalid event"):
        parse_spec(text)


def test_positive_int_and_mode_helpers():
    assert positive_int("+5", "ops") == 5
    assert positive_int(7, "ops") == 7
    with pytest.raises(UsageError, match=r"^parallel must be greater than 0\n"):
        positive_int("0", "parallel")
    assert validate_mode("native") == "native"
    with pytest.raises(UsageError):
        validate_mode("Native")


# -- properties (Hypothesis) ----------------------------------------------------------------


_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
# text that looks like what users type, with the characters that break naive parsers
_near_text = st.text(alphabet=st.sampled_from("0123456789.:=+-_ hmsuµμnoipt\n\t٣,'\"\\$"), max_size=40)
_any_text = st.one_of(_near_text, st.text(max_size=60))


def refused_in_one_paragraph(call, *args) -> str:
    """The property's other half: refused with UsageError, one paragraph whose first line
    names the problem, naming no Python type."""
    with pytest.raises(UsageError) as err:
        call(*args)
    return assert_one_paragraph(str(err.value), 600)


@pytest.mark.property
@given(_any_text)
@example("1" * 5000 + "h")  # digits beyond Python's int-from-str limit
@example("٣s")  # a non-ASCII digit: Go refuses it
@example("168h0.000000001s")  # one ns over the bound
def test_any_duration_is_parsed_within_bounds_or_refused(text):
    try:
        ns = parse_duration(text, "sleep")
    except UsageError:
        refused_in_one_paragraph(parse_duration, text, "sleep")
        return
    assert 0 <= ns <= MAX_DURATION_NS
    assert all(c.isascii() for c in text if c.isdigit())  # Go takes ASCII digits only
    assert parse_duration(format_duration(ns)) == ns


@pytest.mark.property
@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(sorted(_UNIT_NS))), min_size=1, max_size=4))
def test_go_durations_are_summed_exactly(parts):
    text = "".join(f"{number}{unit}" for number, unit in parts)
    total = sum(number * _UNIT_NS[unit] for number, unit in parts)
    if total <= MAX_DURATION_NS:
        assert parse_duration(text) == total
    else:
        assert "longer than evt allows (168h" in refused_in_one_paragraph(parse_duration, text)


@pytest.mark.property
@given(st.integers(0, MAX_DURATION_NS))
def test_every_duration_in_bounds_round_trips_through_go_format(ns):
    assert parse_duration(format_duration(ns)) == ns


@pytest.mark.property
@given(st.one_of(st.integers(-(2**70), 2**70), _any_text))
@example(MAX_COUNT)
@example(MAX_COUNT + 1)
@example("+0000002147483647")
@example("9" * 5000)
def test_any_count_is_an_int32_above_zero_or_refused(value):
    try:
        count = positive_int(value, "ops")
    except UsageError:
        first_line = refused_in_one_paragraph(positive_int, value, "ops").split("\n")[0]
        assert first_line.startswith("ops must be ") or (  # the original's words for ops, or Go's parse error
            first_line.startswith("invalid argument ") and " for ops: strconv.ParseInt: parsing " in first_line
        )
        return
    assert 1 <= count <= MAX_COUNT
    assert str(value).strip().lstrip("+").isascii()
    assert positive_int(str(count), "ops") == count


_spec_part = st.one_of(
    st.tuples(st.sampled_from(["instances", "i", "ops", "o", "sleep", "s", "mode", "m", "count", ""]), _near_text).map(
        lambda kv: f"{kv[0]}={kv[1]}"
    ),
    _near_text,
)


@pytest.mark.property
@given(
    st.one_of(
        st.builds(
            lambda name, parts: ":".join([name, *parts]),
            st.sampled_from(["ptrace", "security_file_open", "", "Pt", "a,b"]),
            st.lists(_spec_part, max_size=4),
        ),
        st.text(max_size=80),
    )
)
@example("ptrace:ops=2147483648")
@example("ptrace:instances=٣")
def test_any_spec_is_accepted_and_round_trips_or_refused(text):
    try:
        spec = parse_spec(text)
    except UsageError:
        refused_in_one_paragraph(parse_spec, text)
        return
    assert parse_spec(str(spec)) == spec
    assert (
        1 <= spec.instances <= INT64_MAX and 1 <= spec.ops <= MAX_COUNT
    )  # instances: a Go int; the host bounds it later
    assert 0 <= spec.sleep_ns <= MAX_DURATION_NS


@pytest.mark.property
@given(
    st.integers(1, MAX_COUNT),
    st.integers(1, MAX_COUNT),
    st.integers(0, MAX_DURATION_NS),
    st.sampled_from([None, "native", "script"]),
)
def test_every_valid_spec_keeps_its_values(instances, ops, sleep_ns, mode):
    spec = EventSpec("ptrace", instances, ops, format_duration(sleep_ns), mode)
    parsed = parse_spec(str(spec))
    assert (parsed.instances, parsed.ops, parsed.sleep_ns, parsed.mode) == (instances, ops, sleep_ns, mode)


def test_counts_beyond_the_originals_int32_are_refused():
    assert parse_spec(f"ptrace:ops={MAX_COUNT}").ops == MAX_COUNT
    first_line, hint = refused_in_one_paragraph(parse_spec, f"ptrace:ops={MAX_COUNT + 1}").split("\n")
    assert first_line.endswith('strconv.ParseInt: parsing "2147483648": value out of range')  # the original's words
    assert "at most 2147483647" in hint  # then evt's
    assert "must be at most 2147483647" in refused_in_one_paragraph(positive_int, MAX_COUNT + 1, "parallel")


def test_durations_beyond_a_week_are_refused():
    assert parse_duration("168h") == MAX_DURATION_NS
    assert "longer than evt allows (168h" in refused_in_one_paragraph(parse_duration, "169h", "stress.timeout")
