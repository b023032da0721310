"""The event codec: every event type survives encode/decode exactly; bad data is a CodecError."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.domain import events as ev
from genesis.domain.codec import CodecError, decode, encode
from genesis.domain.events import EVENT_TYPES

UTC = timezone.utc
AWARE = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))
DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=8),
    st.sampled_from([Decimal("0.00000001"), Decimal("123456789.123456789"), Decimal("-0"),
                     Decimal("1E+3"), Decimal("2.50000"), Decimal("0E-8")]),
)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for any field type the events use, from their type hints."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        assert len(inner) == 1, tp
        return st.one_of(st.none(), strategy_for(inner[0]))
    if origin is tuple:
        return st.lists(strategy_for(typing.get_args(tp)[0]), max_size=4).map(tuple)
    if origin is dict:
        k, v = typing.get_args(tp)
        return st.dictionaries(strategy_for(k), strategy_for(v), max_size=3)
    if tp is Decimal:
        return DECIMALS
    if tp is datetime:
        return AWARE
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**53), 2**53)
    if tp is str:
        return st.text(max_size=20)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if dataclasses.is_dataclass(tp):
        return event_strategy(tp)
    raise AssertionError(f"no strategy for {tp!r}: extend the test")


def event_strategy(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)})


def assert_exactly_equal(a: Any, b: Any, where: str = "") -> None:
    """Equal, and every Decimal with the same sign, digits and exponent; every datetime UTC."""
    assert type(a) is type(b), where
    if isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, datetime):
        assert a == b and b.tzinfo == UTC, where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_exactly_equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_exactly_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_exactly_equal(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_event_type_round_trips_exactly(event_type: str, data: st.DataObject) -> None:
    cls = EVENT_TYPES[event_type]
    event = data.draw(event_strategy(cls))
    text = encode(event)
    back = decode(event_type, text)
    assert back == event
    assert_exactly_equal(event, back, event_type)
    assert back.event_type == event_type
    # the dict form decodes too, and encoding is stable
    assert decode(event_type, json.loads(text)) == event
    assert encode(back) == text
    # and canonical: what json writes for the same document, compact, keys sorted, ASCII
    assert text == json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)


def test_event_types_are_registered_under_their_class_name() -> None:
    assert all(name == cls.__name__ and issubclass(cls, ev.Event) for name, cls in EVENT_TYPES.items())
    assert {"TwapSliceExecuted", "TwapCompleted", "ExecutionSubmitted", "OrderIntended"} <= set(EVENT_TYPES)


def test_decimals_are_strings_and_times_are_utc_in_the_json() -> None:
    t = datetime(2025, 6, 10, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    plan = (ev.PlannedSlice(0, t, Decimal("0.00000001")), ev.PlannedSlice(1, t + timedelta(minutes=1),
                                                                           Decimal("123456789.123456789")))
    e = ev.ExecutionStarted("abc", t, Decimal("65000.10"), t + timedelta(minutes=2), plan)
    raw = json.loads(encode(e))
    assert raw["arrival_price"] == "65000.10"
    assert raw["occurred_at"] == "2025-06-10T13:00:00+00:00"
    assert raw["slices"][0] == {"index": 0, "scheduled_at": "2025-06-10T13:00:00+00:00", "qty": "1E-8"}
    assert raw["slices"][1]["qty"] == "123456789.123456789"
    back = decode("ExecutionStarted", encode(e))
    assert back.slices[0].qty.as_tuple() == Decimal("0.00000001").as_tuple()
    assert back.arrival_price.as_tuple() == Decimal("65000.10").as_tuple()
    assert back.occurred_at.tzinfo == UTC and back.occurred_at == t


def test_none_optionals_round_trip() -> None:
    e = ev.OrderIntended("abc", datetime(2025, 1, 1, tzinfo=UTC), 3, 0, "gabc-3-0", "market", "gtc",
                         Decimal("0.5"), None, Decimal("100.5"))
    back = decode("OrderIntended", encode(e))
    assert back == e and back.limit_price is None


def _valid(event_type: str) -> dict[str, Any]:
    examples = {
        "FillRecorded": ev.FillRecorded("abc", datetime(2025, 1, 1, tzinfo=UTC), "gabc-0-0", 0, "t1",
                                        Decimal("0.1"), Decimal("100"), Decimal("0.01"), "USDT", "taker",
                                        datetime(2025, 1, 1, tzinfo=UTC)),
        "ExecutionStarted": ev.ExecutionStarted(
            "abc", datetime(2025, 1, 1, tzinfo=UTC), Decimal("100"), datetime(2025, 1, 1, 0, 10, tzinfo=UTC),
            (ev.PlannedSlice(0, datetime(2025, 1, 1, tzinfo=UTC), Decimal("1")),)),
        "ExecutionSubmitted": ev.ExecutionSubmitted("abc", datetime(2025, 1, 1, tzinfo=UTC), "r", "BTC/USDT",
                                                    "buy", Decimal("1"), "twap", 600, params={"a": "b"}),
    }
    return json.loads(encode(examples[event_type]))


def test_unknown_event_type_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="unknown event type"):
        decode("TwapExploded", "{}")


@pytest.mark.parametrize("event_type, field, bad, names", [
    ("FillRecorded", "qty", 0.1, "qty"),  # a float would smuggle binary rounding into money
    ("FillRecorded", "qty", 1, "qty"),
    ("FillRecorded", "qty", "lots", "qty"),
    ("FillRecorded", "qty", None, "qty"),
    ("FillRecorded", "price", ["100"], "price"),
    ("FillRecorded", "slice_index", "0", "slice_index"),
    ("FillRecorded", "slice_index", 1.5, "slice_index"),
    ("FillRecorded", "slice_index", True, "slice_index"),
    ("FillRecorded", "trade_id", 7, "trade_id"),
    ("FillRecorded", "filled_at", "yesterday", "filled_at"),
    ("FillRecorded", "filled_at", 1735689600, "filled_at"),
    ("ExecutionStarted", "slices", "0,1", "slices"),
    ("ExecutionStarted", "slices", [{"index": 0, "scheduled_at": "2025-01-01T00:00:00+00:00"}], "PlannedSlice"),
    ("ExecutionStarted", "slices", [["0", "2025-01-01T00:00:00+00:00", "1"]], "PlannedSlice"),
    ("ExecutionStarted", "slices", [{"index": 0, "scheduled_at": "2025-01-01T00:00:00+00:00", "qty": 1.0}],
     "PlannedSlice"),
    ("ExecutionSubmitted", "params", ["a", "b"], "params"),
    ("ExecutionSubmitted", "params", {"a": 1}, "params"),
])
def test_wrong_field_types_are_codec_errors(event_type: str, field: str, bad: Any, names: str) -> None:
    raw = _valid(event_type)
    decode(event_type, raw)  # the valid form decodes
    raw[field] = bad
    with pytest.raises(CodecError, match=names):
        decode(event_type, raw)
    with pytest.raises(CodecError):
        decode(event_type, json.dumps(raw))


def test_missing_required_field_is_a_codec_error() -> None:
    raw = _valid("FillRecorded")
    del raw["price"]
    with pytest.raises(CodecError, match="price"):
        decode("FillRecorded", raw)


@pytest.mark.parametrize("data", ["not json", "[1, 2]", "null", "42"])
def test_malformed_documents_are_codec_errors(data: str) -> None:
    with pytest.raises(CodecError):
        decode("ExecutionPaused", data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["1.5", "1E+3", "-0", "NaN", "2025-01-01T00:00:00", "2025-01-01T05:30:00+05:30", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


def _outcome(decoder: Any, raw: Any) -> Any:
    try:
        return decoder(raw)
    except CodecError as exc:
        return f"CodecError: {exc}"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_fast_decoder_gives_the_general_decoders_value_or_error(event_type: str, data: st.DataObject) -> None:
    """Restart recovery decodes through generated decoders (``genesis.domain.fast_decode``):
    on any document, valid or with one field replaced by any JSON value or dropped, they
    build exactly what the general decoder builds, or fail with its error."""
    from genesis.domain.codec import _decoder, _general_decoder

    cls = EVENT_TYPES[event_type]
    raw = json.loads(encode(data.draw(event_strategy(cls))))
    change = data.draw(st.sampled_from(["none", "replace", "drop"]))
    name = data.draw(st.sampled_from(sorted(raw)))
    if change == "replace":
        raw[name] = data.draw(JSON_VALUES)
    elif change == "drop":
        del raw[name]
    fast, general = _outcome(_decoder(cls), dict(raw)), _outcome(_general_decoder(cls), dict(raw))
    if isinstance(general, str):
        assert fast == general
    else:
        assert_exactly_equal(general, fast, event_type)
        assert_exactly_equal(general, decode(event_type, json.dumps(raw)), event_type)  # the text parser too


def test_a_slice_event_stored_under_its_legacy_names_decodes_as_before() -> None:
    event = ev.TwapSliceExecuted("abc", datetime(2025, 1, 1, tzinfo=UTC), 0, 2, "filled", Decimal("1"),
                                 Decimal("1"), Decimal("100"), Decimal("100"), Decimal("0"), Decimal("0.01"),
                                 forecast_volume=Decimal("50"), forecast_participation=Decimal("0.02"))
    raw = json.loads(encode(event))
    raw["market_volume"], raw["participation"] = raw.pop("forecast_volume"), raw.pop("forecast_participation")
    assert_exactly_equal(event, decode("TwapSliceExecuted", json.dumps(raw)))


@pytest.mark.parametrize("text, field", [
    ('{"execution_id":"a","occurred_at":"2025-01-01T00:00:00+00:00","reason":NaN,"held_seconds":1.0}', "reason"),
    ('{"execution_id":"a","occurred_at":"2025-01-01T00:00:00+00:00","reason":"r","held_seconds":NaN}', None),
])
def test_what_orjson_refuses_is_read_by_the_standard_parser(text: str, field: str | None) -> None:
    """NaN is not JSON to orjson; the codec read it before (json's extension) and still does."""
    if field is None:
        assert decode("SlicingResumed", text).held_seconds != decode("SlicingResumed", text).held_seconds  # NaN
    else:
        with pytest.raises(CodecError, match=field):
            decode("SlicingResumed", text)
