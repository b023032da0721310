"""Lossless JSON codec of domain events.

Rules: ``Decimal`` as a string (exact; a JSON number for a Decimal field is refused, so no
binary float can slip into money), datetimes as ISO-8601 UTC, enums by value, tuples of
nested dataclasses as lists of objects. Anything else is a ``CodecError``. A class's
``legacy_names`` (old key -> field) reads events stored before a field was renamed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Callable

from genesis.clock import utc
from genesis.domain.events import EVENT_TYPES, Event
from genesis.domain.fast_decode import compile_decoder
from genesis.domain.fast_encode import compile_encoder

try:
    from orjson import loads as _fast_loads
except ImportError:  # not a CPython build orjson supports: the standard parser
    _fast_loads = json.loads


class CodecError(ValueError):
    """Stored event data cannot be decoded."""


def encode(event: Event) -> str:
    """Event body as a JSON string (the envelope is the store's business): compact, keys
    sorted, ASCII."""
    return _encoder(type(event))(event)


_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


@cache
def _encoder(cls: type) -> Callable[[Any], str]:
    """``_dumps(_to_plain(event))`` for events of ``cls``, built once per class: the flat
    fields (text, numbers, decimals, times) are written directly by generated code
    (``genesis.domain.fast_encode``), tuples item by item (each item by its class's encoder:
    the same text), the rest through ``_dumps``. Events are encoded on the writer's hot path."""
    names = _field_names(cls)
    if not names:
        return lambda value: _dumps(_to_plain(value))
    return compile_encoder(names, _encode_other)


@cache
def timed_encoder(cls: type) -> Callable[[Any, str], str]:
    """``encode`` for events of ``cls`` given their ``occurred_at`` as naive-UTC text
    (``genesis.store.types.utc_text``, which the store writer makes anyway), built once per
    class: ``timed_encoder(type(e))(e, utc_text(e.occurred_at)) == encode(e)``."""
    names = _field_names(cls)
    if not names or "occurred_at" not in names:
        untimed = _encoder(cls)
        return lambda value, at: untimed(value)
    return compile_encoder(names, _encode_other, timed=True)


def _encode_other(v: Any) -> str:
    """The JSON text of a field value the generated encoders do not write inline."""
    if type(v) is tuple:  # a re-plan's slices: each item by its own class's encoder
        return "[" + ",".join([_encoder(type(item))(item) for item in v]) + "]"
    return _dumps(_to_plain(v))


def decode(event_type: str, data: str | dict[str, Any]) -> Event:
    """The event of ``event_type`` from its JSON body (text, or already parsed). Text is parsed
    by orjson when it is installed (a ccxt dependency; restart recovery parses every live
    event); what orjson refuses or reads differently from ``json`` (NaN, integers beyond 64
    bits: it reads them as floats) is parsed again by ``json`` before an error is raised."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise CodecError(f"unknown event type {event_type!r}")
    if not isinstance(data, str):
        return _decoder(cls)(data)
    try:
        return _decoder(cls)(_fast_loads(data))
    except (ValueError, TypeError):  # orjson's refusal, or its reading the field did not take
        pass
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise CodecError(f"{event_type}: not JSON: {exc}") from None
    return _decoder(cls)(raw)


_PLAIN = frozenset({str, int, bool, float, type(None)})


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None


def _to_plain(value: Any) -> Any:
    tp = type(value)
    # exact-type fast paths first (events are encoded on the writer's hot path); subclasses
    # (IntEnum, str enums...) take the general rules below
    if tp in _PLAIN:
        return value
    if tp is Decimal:
        return str(value)
    if tp is datetime:
        return (value if value.tzinfo is timezone.utc else utc(value)).isoformat()
    names = _field_names(tp)
    if names is not None:
        return {n: _to_plain(getattr(value, n)) for n in names}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


Converter = Callable[[Any], Any]


@cache
def _decoder(cls: type) -> Converter:
    """A function from the JSON object of ``cls`` to an instance, built once per class: the
    generated fast path (``genesis.domain.fast_decode``), which hands anything it does not
    take to ``_general_decoder``."""
    return compile_decoder(cls, _general_decoder(cls), lambda tp: _converter(tp, cls.__name__))


@cache
def _general_decoder(cls: type) -> Converter:
    """A function from the JSON object of ``cls`` to an instance, built once per class; every
    field checked by its converter (the errors name the field)."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _converter(hints[f.name], f"{cls.__name__}.{f.name}")) for f in dataclasses.fields(cls)]
    legacy: dict[str, str] = getattr(cls, "legacy_names", {})  # old key -> the field it became

    def from_plain(raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise CodecError(f"{cls.__name__}: expected an object, got {raw!r}")
        if legacy and not any(new in raw for new in legacy.values()):
            raw = {legacy.get(k, k): v for k, v in raw.items()}
        kwargs = {name: convert(raw[name]) for name, convert in fields if name in raw}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise CodecError(f"{cls.__name__}: {exc}") from exc

    return from_plain


def _converter(tp: Any, where: str) -> Converter:  # noqa: C901 - one branch per supported type
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = _converter([a for a in typing.get_args(tp) if a is not type(None)][0], where)
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        item = _converter(typing.get_args(tp)[0], where)

        def to_tuple(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise CodecError(f"{where}: expected a list, got {value!r}")
            return tuple(item(v) for v in value)
        return to_tuple
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        key, val = _converter(key_tp, where), _converter(value_tp, where)

        def to_dict(value: Any) -> dict[Any, Any]:
            if not isinstance(value, dict):
                raise CodecError(f"{where}: expected an object, got {value!r}")
            return {key(k): val(v) for k, v in value.items()}
        return to_dict
    if tp is Decimal:  # only the exact text encode() writes: a JSON number would be a binary float
        return _from_text(Decimal, InvalidOperation, where, "a decimal string", "a decimal")
    if tp is datetime:
        return _from_text(lambda v: utc(datetime.fromisoformat(v)), ValueError, where,
                          "an ISO-8601 string", "an ISO-8601 time")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decoder(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        def to_enum(value: Any) -> Any:
            try:
                return tp(value)
            except ValueError:
                raise CodecError(f"{where}: {value!r} is not a {tp.__name__}") from None
        return to_enum
    if tp in (int, str, bool, float):
        def exact(value: Any) -> Any:
            if not isinstance(value, tp) or (isinstance(value, bool) and tp is not bool):
                raise CodecError(f"{where}: expected {tp.__name__}, got {value!r}")
            return value
        return exact
    raise CodecError(f"{where}: unsupported type {tp!r}")


def _from_text(parse: Converter, error: type[Exception], where: str, expected: str, what: str) -> Converter:
    """A converter of JSON text through ``parse``; anything else, or text ``parse`` refuses
    with ``error``, is a ``CodecError`` naming the field."""
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected {expected}, got {value!r}")
        try:
            return parse(value)
        except error:
            raise CodecError(f"{where}: {value!r} is not {what}") from None
    return convert
