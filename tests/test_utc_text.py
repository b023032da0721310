"""The text a time is bound as on SQLite and by the PostgreSQL event writer: naive UTC,
"YYYY-MM-DD HH:MM:SS.ffffff", always with microseconds (``genesis.store.types``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesis.store.types import utc_text


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_any_aware_time_is_its_utc_wall_clock_with_microseconds(naive: datetime, offset_minutes: int) -> None:
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    utc = aware.astimezone(timezone.utc)
    assert utc_text(aware) == utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert utc_text(utc) == utc.strftime("%Y-%m-%d %H:%M:%S.%f").rjust(26, "0")


def test_whole_seconds_keep_their_microseconds_and_naive_times_are_refused() -> None:
    assert utc_text(datetime(2025, 6, 10, 13, 0, 1, tzinfo=timezone.utc)) == "2025-06-10 13:00:01.000000"
    assert utc_text(datetime(999, 1, 2, tzinfo=timezone.utc)) == "0999-01-02 00:00:00.000000"
    assert utc_text(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        utc_text(datetime(2025, 6, 10))
