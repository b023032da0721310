"""Values the event store cannot take, found before they reach the database.

A value its column cannot hold must refuse its own append, not the store: a lone surrogate
(``'\\ud800'``) has no UTF-8 form, so SQLite's and psycopg's drivers raise while binding it,
in the commit process, which then dies and takes every append with it; a Decimal beyond
``NUMERIC(38,18)`` makes PostgreSQL refuse the whole group commit; a NaN or an absurd
exponent makes the fold's or the projection's arithmetic raise ``ArithmeticError``; a Decimal
with thousands of digits after the point (``1E-20000``) overflows PostgreSQL's NUMERIC text.

The writer checks on its hot path only what is cheap: ``check_event_texts`` looks at each
event's JSON text once (the codec writes ASCII JSON, so a surrogate or NUL in any string of
the event, projected or not, shows as a ``\\u`` escape there), and ``genesis.store.types.Money``
refuses non-finite and out-of-range Decimals as it converts them. Only when something is
found does ``describe`` walk the events of the one append refused, to name the field.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any, Iterable, Iterator, Sequence

MONEY_INTEGER_DIGITS = 20  # NUMERIC(38,18): below 1E+20 in magnitude (``genesis.store.types.Money``)
# ... once rounded to its 18 decimal places (PostgreSQL rounds half away from zero): below this
MONEY_ROUNDS_OUT = Decimal("99999999999999999999.9999999999999999995")
# digits after the point stored at most: PostgreSQL refuses a NUMERIC text of more than 16,383
# (the whole group commit with it); no amount needs a thousand (NUMERIC(38,18) keeps 18)
MONEY_FRACTION_DIGITS = 1000


class UnstorableValueError(ValueError):
    """A value the store cannot write (the message names the field and what is wrong)."""


def check_event_texts(rows: Iterable[Sequence[Any]], type_at: int | str, data_at: int | str) -> None:
    """Raise ``UnstorableValueError`` if an event row's JSON text (at ``data_at``; its event
    type at ``type_at``) holds a string that is not storable text: a lone surrogate or NUL.
    The codec's JSON is ASCII (``genesis.domain.codec.encode``): such a character is a ``\\u``
    escape there. One search for a backslash per row (memchr); the JSON is parsed only when
    it holds the escape of a surrogate or NUL (a character beyond the BMP too, which is fine)."""
    for row in rows:
        text = row[data_at]
        if "\\" in text and ("\\ud" in text or "\\u0000" in text):
            problem = next(_text_problems(json.loads(text), ""), None)
            if problem is not None:
                raise UnstorableValueError(f"{row[type_at]}{problem}")


def check_strings(values: Iterable[Any], where: str) -> None:
    """``UnstorableValueError`` naming ``where`` if one of ``values`` is a str that is not
    storable text (for the few values of a command settlement, not for the hot path)."""
    for value in values:
        problem = _text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise UnstorableValueError(f"{where}: {problem}")


def describe(events: Sequence[Any], error: BaseException) -> str:
    """Why ``events`` (one append) cannot be stored, naming the field when one of their values
    is the cause (a string that is not text, a Decimal ``money_problem`` refuses); else
    ``error``, what planning them raised."""
    for event in events:
        for path, problem in _field_problems(event, type(event).__name__):
            return f"{path}: {problem}"
    detail = str(error) if isinstance(error, (TypeError, ValueError)) else ""  # (UnstorableValueError is one)
    if isinstance(error, ArithmeticError):
        detail = f"arithmetic on their values failed ({type(error).__name__})"
    detail = detail or type(error).__name__
    return f"{', '.join(type(e).__name__ for e in events)}: {detail}" if events else detail


def money_problem(value: Decimal) -> str | None:
    """Why no money column can store ``value`` (not finite, out of range, absurdly many digits
    after the point), or None. Its exact text is ``format(value, "f")``."""
    return money_text_problem(value, format(value, "f")) if value.is_finite() else f"{value} is not a finite number"


def money_text_problem(value: Decimal, text: str) -> str | None:
    """``money_problem`` of a finite ``value`` whose exact text is ``text``. Exact:
    ``copy_abs``, not ``abs``, which rounds to the context's 28 digits."""
    if value.adjusted() >= MONEY_INTEGER_DIGITS - 1 and value.copy_abs() >= MONEY_ROUNDS_OUT:
        return (f"{value} is out of range (numbers stored are below 1E+{MONEY_INTEGER_DIGITS} in magnitude "
                f"once rounded to 18 decimal places)")
    if len(text) > MONEY_FRACTION_DIGITS + 2 and len(text.partition(".")[2]) > MONEY_FRACTION_DIGITS:
        return f"{str(value)[:40]} has more than {MONEY_FRACTION_DIGITS} digits after the point"
    return None


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return f"NUL character in {ascii(value)[:80]} (not storable text)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate {ascii(value[exc.start])} in {ascii(value)[:80]} (not UTF-8 text)"
    return None


def _text_problems(plain: Any, path: str) -> Iterator[str]:
    """The problems of the strings (keys too) in parsed JSON ``plain``, as ``.field: what``."""
    if isinstance(plain, str):
        problem = _text_problem(plain)
        if problem is not None:
            yield f"{path}: {problem}"
    elif isinstance(plain, dict):
        for key, value in plain.items():
            key_problem = _text_problem(key)
            if key_problem is not None:
                yield f"{path} key: {key_problem}"
            yield from _text_problems(value, f"{path}.{ascii(key)[1:-1]}")
    elif isinstance(plain, list):
        for i, value in enumerate(plain):
            yield from _text_problems(value, f"{path}[{i}]")


def _field_problems(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, problem) of every unstorable value in an event (dataclasses, tuples, dicts)."""
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem is not None:
            yield path, problem
    elif isinstance(value, Decimal):
        problem = money_problem(value)
        if problem is not None:
            yield path, problem
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _field_problems(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _field_problems(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _field_problems(key, f"{path} key")
            yield from _field_problems(item, f"{path}[{ascii(key)}]")
