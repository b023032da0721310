"""Column types that keep money exact and times in UTC on every backend.

``Money`` stores a ``Decimal`` as its exact text on SQLite (whose NUMERIC affinity would turn
it into a float) and as ``NUMERIC`` on PostgreSQL. SQLite still does arithmetic on the text
in views and ad-hoc SQL (``filled_qty * avg_price`` works); the application never reads a
float back.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.types import TypeDecorator

from genesis.store.value_checks import MONEY_FRACTION_DIGITS, MONEY_INTEGER_DIGITS, money_text_problem


TEXT_BINDS = "genesis_text_binds"


def text_binds(dialect: Any) -> bool:
    """Whether ``dialect`` (the PostgreSQL event writer's) binds money and times as text, the
    plain values its commit process takes (its SQL casts them): ``genesis.store.db``."""
    return bool(getattr(dialect, TEXT_BINDS, False))


class Money(TypeDecorator[Decimal]):
    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"Money columns take Decimal, got {type(value).__name__}: {value!r}")
        if not value.is_finite():
            raise ValueError(f"Money columns take finite values, got {value}")
        text = format(value, "f")
        # what NUMERIC(38,18) cannot take is refused on SQLite too; looked at closer only if near a bound
        if value.adjusted() >= MONEY_INTEGER_DIGITS - 1 or len(text) > MONEY_FRACTION_DIGITS + 2:
            problem = money_text_problem(value, text)
            if problem is not None:
                raise ValueError(f"Money columns cannot store it: {problem}")
        return value if dialect.name == "postgresql" and not text_binds(dialect) else text

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (stored naive-UTC on SQLite).

    On SQLite the conversion to and from text is done here, in one step with the same text
    SQLAlchemy's own DATETIME writes ("2025-06-10 13:00:01.000000"): the stock path formats
    and parses field by field, and every event row carries two of these."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite" and not text_binds(dialect):
            return super().bind_processor(dialect)
        return utc_text  # one function for every column: the writer's memo converts a time once

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if not isinstance(value, str):
                raise ValueError(f"stored time {value!r} is not ISO-8601 text")
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        return process

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use aware UTC datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def utc_text(value: Any) -> str | None:
    """An aware datetime as naive-UTC text, "2025-06-10 13:00:01.000000" (SQLite, and the
    PostgreSQL event writer)."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use aware UTC datetimes")
        value = value.astimezone(timezone.utc)
    if type(value) is datetime:  # the writer's hot path: the same wall clock, naive (no offset to format)
        return (_NAIVE_EPOCH + (value - _UTC_EPOCH)).isoformat(" ", "microseconds")
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" in one C call, cut before the offset
    return value.isoformat(" ", "microseconds")[:26]


# an aware UTC time minus _UTC_EPOCH is exact (same tzinfo: no offsets looked up), plus _NAIVE_EPOCH its naive twin
_UTC_EPOCH, _NAIVE_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(1970, 1, 1)
