"""Generated encoders of the codec's flat dataclasses: the fast path of ``codec.encode``.

Every append encodes its events on the store writer's hot path (the daemon's event loop). The
codec's per-class encoder walked a list of fields, with one type test and one list append per
field; this module writes, once per class, one function that reads every field, tests its type
inline and builds the whole JSON object with one f-string. It writes the same text: the
fields in sorted order, text quoted by ``json``'s own ASCII quoting, ``Decimal`` as its exact
``str``, datetimes as UTC ISO-8601, ``int`` by ``int.__repr__``, ``None`` as ``null``; anything
else (tuples, enums, floats, bools, nested objects) goes to the codec's ``fallback``, per field.

A *timed* encoder takes the event's ``occurred_at`` already as naive-UTC text (``utc_text``,
which the store writer makes for its column anyway) and writes the field from it instead of
formatting the time a second time (``datetime.isoformat`` is the most expensive call in it).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote  # type: ignore[attr-defined]
from typing import Any, Callable

from genesis.clock import utc


def compile_encoder(names: tuple[str, ...], fallback: Callable[[Any], str], timed: bool = False
                    ) -> Callable[..., str]:
    """The encoder of a dataclass with fields ``names`` (identifiers): its JSON object text,
    keys sorted. ``fallback(value)``: the JSON text of a field value of any other type.
    ``timed``: the encoder takes a second argument, the ``occurred_at`` field (a field of
    ``names``) as ``genesis.store.types.utc_text`` writes it, used when that field is a
    ``datetime``: ``encoder(value, utc_text(value.occurred_at))`` is ``untimed(value)``."""
    env: dict[str, Any] = {"quote": _quote, "Decimal": Decimal, "datetime": datetime, "UTC": timezone.utc,
                           "utc": utc, "fallback": fallback, "int_repr": int.__repr__}
    lines = ["def encode_fields(value, at):" if timed else "def encode_fields(value):"]
    template = []
    for i, name in enumerate(sorted(names)):
        v, out = f"v{i}", f"s{i}"
        # "2025-06-10 13:00:01.000001" -> "2025-06-10T13:00:01.000001+00:00", no fraction when it is 0
        given = (f" if tp is datetime: {out} = '\"' + (at[:19] if at.endswith('.000000') else at)"
                 f".replace(' ', 'T') + '+00:00\"'")
        lines += [
            f" {v} = value.{name}",
            f" tp = type({v})",
            *([given] if timed and name == "occurred_at" else []),
            f" {'elif' if timed and name == 'occurred_at' else 'if'} tp is str: {out} = quote({v})",
            f" elif tp is Decimal: {out} = '\"' + str({v}) + '\"'",  # a Decimal's text needs no escaping
            f" elif tp is datetime: {out} = '\"' + ({v} if {v}.tzinfo is UTC else utc({v})).isoformat() + '\"'",
            f" elif tp is int: {out} = int_repr({v})",
            f" elif {v} is None: {out} = 'null'",
            f" else: {out} = fallback({v})",
        ]
        template.append(_quote(name).replace("{", "{{").replace("}", "}}") + ":{" + out + "}")
    lines.append(" return f'{{" + ",".join(template).replace("'", "\\'") + "}}'")
    exec("\n".join(lines), env)  # noqa: S102 - the source is built above from field names only
    return env["encode_fields"]  # type: ignore[no-any-return]
