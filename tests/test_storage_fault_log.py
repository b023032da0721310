"""A storage fault that lasts is logged when it starts, then at most once per interval with
the count of retries not logged, and its end once: not one line per retry (a full disk
logged ~160 identical lines a second)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from genesis.engine import durable_append

from genesis.engine.control import Control
from genesis.engine.log_throttle import LogThrottle
from genesis.engine.runner import ExecutionRunner
from genesis.store.eventstore import StorageError


def test_the_throttle_logs_the_first_then_one_per_interval_with_the_count_skipped():
    now = [100.0]
    throttle = LogThrottle(10.0, clock=lambda: now[0])
    assert not throttle.active
    assert throttle.due() == 0 and throttle.active
    assert [throttle.due() for _ in range(5)] == [None] * 5
    now[0] += 10.0
    assert throttle.due() == 5
    assert throttle.due() is None
    assert throttle.reset() == 1 and not throttle.active
    assert throttle.due() == 0  # a new fault starts afresh


class InstantClock:
    """The runner's clock, whose sleeps return at once: a retry loop as fast as it can go."""

    def __init__(self) -> None:
        self.at = datetime(2025, 6, 9, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.at

    async def sleep_until(self, when: datetime) -> None:
        self.at = max(self.at, when)


class FullDiskStore:
    """Refuses ``failures`` appends with the error SQLite gives on a full disk, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures, self.attempts = failures, 0

    async def append(self, events: list[Any], done_commands: Any = None) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StorageError("(sqlite3.OperationalError) database or disk is full")

    async def load(self, execution_id: str) -> str:
        return "aggregate"


@pytest.fixture
def every_level() -> Iterator[None]:
    """Warnings logged whatever level an earlier test configured (``configure_logging("error")``)."""
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**previous)


async def test_a_long_storage_fault_is_a_few_lines_with_counts(monkeypatch: pytest.MonkeyPatch, every_level: None):
    monkeypatch.setattr(durable_append, "STORAGE_FAULT_LOG_SECONDS", 3600.0)  # the whole fault in one interval
    store = FullDiskStore(failures=2_000)
    with capture_logs() as logs:  # before the runner binds its logger
        runner = ExecutionRunner("0123456789ab", store=store, venue=None, clock=InstantClock(),  # type: ignore[arg-type]
                                 instrument=None, risk=None, positions=None, control=Control())  # type: ignore[arg-type]
        assert await runner.append([]) == "aggregate"
    halted = [e for e in logs if e["event"] == "storage_fault_trading_halted"]
    cleared = [e for e in logs if e["event"] == "storage_fault_cleared"]
    assert store.attempts == 2_001
    assert len(halted) == 1 and halted[0]["repeats_not_logged"] == 0 and "disk is full" in halted[0]["error"]
    assert len(cleared) == 1 and cleared[0]["log_level"] == "warning"
    assert cleared[0]["repeats_not_logged"] == 1_999
