"""Generated decoders of the codec's JSON objects: the fast path of ``codec.decode``.

Restart recovery decodes every event of every live execution (43,000 for 1,000 executions
in the bench), so the per-field converter calls and the frozen dataclass constructor
(``object.__setattr__`` per field) were most of its time. For each dataclass this module
writes one function that checks and converts every field inline and fills the instance's
slots directly.

It accepts a strict subset of what the codec's general decoder accepts (exact JSON types:
``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``) and builds the same value. Anything
else (a wrong type, a missing field, a malformed decimal or time, an old event's
``legacy_names``) goes to the general decoder, which builds the value or raises the codec's
error naming the field: the errors are the general decoder's, unchanged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

from genesis.clock import utc

Converter = Callable[[Any], Any]
_MISSING = object()


def compile_decoder(cls: type, general: Converter, converter: Callable[[Any], Converter]) -> Converter:
    """The fast decoder of ``cls`` (a dataclass). ``general``: the codec's decoder of
    ``cls`` (where anything the fast path does not take goes); ``converter(tp)``: the codec's
    converter of a field type the fast path does not inline (dicts, enums, nested classes)."""
    hints = typing.get_type_hints(cls)
    if hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__:
        return general  # the constructor does more than store the fields
    env: dict[str, Any] = {"cls": cls, "general": general, "new": object.__new__, "MISSING": _MISSING,
                           "Decimal": Decimal, "fromiso": datetime.fromisoformat, "UTC": timezone.utc,
                           "utc": utc}
    lines = ["def from_plain(raw):", " if type(raw) is not dict:", "  return general(raw)"]
    renamed = sorted(set(getattr(cls, "legacy_names", {}).values()))
    if renamed:  # stored before the rename (none of the new keys): the general decoder renames
        lines += [" if " + " and ".join(f"{new!r} not in raw" for new in renamed) + ":", "  return general(raw)"]
    lines.append(" try:")
    for i, f in enumerate(dataclasses.fields(cls)):
        x = f"x{i}"
        if f.default is not dataclasses.MISSING:
            env[f"d{i}"] = f.default
            lines += [f"  {x} = raw.get({f.name!r}, MISSING)", f"  if {x} is MISSING:", f"   {x} = d{i}", "  else:"]
            indent = "   "
        elif f.default_factory is not dataclasses.MISSING:
            env[f"d{i}"] = f.default_factory
            lines += [f"  {x} = raw.get({f.name!r}, MISSING)", f"  if {x} is MISSING:", f"   {x} = d{i}()", "  else:"]
            indent = "   "
        else:
            lines.append(f"  {x} = raw[{f.name!r}]")
            indent = "  "
        lines += [indent + line for line in _convert(x, hints[f.name], env, converter, f"c{i}")]
        env[f"s{i}"] = getattr(cls, f.name).__set__  # the slot's own setter (frozen: no __setattr__)
    lines += ["  o = new(cls)"]
    lines += [f"  s{i}(o, x{i})" for i in range(len(dataclasses.fields(cls)))]
    lines += ["  return o", " except Exception:", "  return general(raw)  # raises the codec's error"]
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the class's own field names
    decoder: Converter = env["from_plain"]
    return decoder


def _convert(x: str, tp: Any, env: dict[str, Any], converter: Callable[[Any], Converter], name: str) -> list[str]:
    """Lines that check ``x`` and convert it in place to ``tp``; ``raise TypeError`` (caught:
    the general decoder takes over) when the JSON type is not the exact one expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _convert(x, args[0], env, converter, name)
        return [f"if {x} is not None:", *(" " + line for line in inner)]
    refuse = "raise TypeError"
    if tp in (str, int, float, bool):
        env[tp.__name__] = tp
        return [f"if type({x}) is not {tp.__name__}: {refuse}"]
    if tp is Decimal:
        return [f"if type({x}) is not str: {refuse}", f"{x} = Decimal({x})"]
    if tp is datetime:
        return [f"if type({x}) is not str: {refuse}", f"{x} = fromiso({x})",
                f"if {x}.tzinfo is not UTC: {x} = utc({x})"]
    if origin is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
        env[name] = converter(typing.get_args(tp)[0])
        return [f"if type({x}) is not list: {refuse}", f"{x} = tuple([{name}(v) for v in {x}])"]
    env[name] = converter(tp)  # dicts, enums, nested classes: the codec's own converter
    return [f"{x} = {name}({x})"]
