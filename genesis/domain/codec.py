"""Lossless JSON codec of domain events.

Rules: ``Decimal`` as a string (exact; a JSON number for a Decimal field is refused, so no
binary float can slip into money), datetimes as ISO-8601 UTC, enums by value, tuples of
nested dataclasses as lists of objects. Anything else is a ``CodecError``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import TYPE_CHECKING, Any

from genesis.clock import utc

if TYPE_CHECKING:
    from genesis.domain.events import Event


class CodecError(ValueError):
    """Stored event data cannot be decoded."""


def encode(event: Event) -> str:
    """Event body as a JSON string (the envelope is the store's business)."""
    return json.dumps(_to_plain(event), separators=(",", ":"), sort_keys=True)


def decode(event_type: str, data: str | dict[str, Any]) -> Event:
    from genesis.domain.events import EVENT_TYPES

    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise CodecError(f"unknown event type {event_type!r}")
    try:
        raw = json.loads(data) if isinstance(data, str) else data
    except ValueError as exc:
        raise CodecError(f"{event_type}: not JSON: {exc}") from None
    return _from_plain(cls, raw)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_plain(cls: type, raw: dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise CodecError(f"{cls.__name__}: expected an object, got {raw!r}")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name], f"{cls.__name__}.{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CodecError(f"{cls.__name__}: {exc}") from exc


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise CodecError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(item_tp, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise CodecError(f"{where}: expected an object, got {value!r}")
        key_tp, value_tp = typing.get_args(tp)
        return {_convert(key_tp, k, where): _convert(value_tp, v, where) for k, v in value.items()}
    if tp is Decimal:
        # only the exact text encode() writes: a JSON number would be a binary float
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected a decimal string, got {value!r}")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise CodecError(f"{where}: {value!r} is not a decimal") from None
    if tp is datetime:
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected an ISO-8601 string, got {value!r}")
        try:
            return utc(datetime.fromisoformat(value))
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not an ISO-8601 time") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_plain(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not a {tp.__name__}") from None
    if tp in (int, str, bool, float):
        if not isinstance(value, tp) or (isinstance(value, bool) and tp is not bool):
            raise CodecError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise CodecError(f"{where}: unsupported type {tp!r}")
