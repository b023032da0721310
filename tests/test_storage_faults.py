"""Fail closed on storage faults: a database locked by another process, a read-only database,
a full disk. In each case the runner sends no order whose intent is not durable (checked by
the venue itself, through its own connection, at the moment each order arrives), says what is
wrong (``storage_fault_trading_halted``), and finishes the execution once storage recovers.

The faults are real SQLite refusals, switched on from inside the event store's writer thread
(the ``"thread"`` committer, whose engine takes SQLAlchemy hooks; the refusals reach the
writer the same way from either committer, see ``tests/test_committers.py``) at a chosen statement (the insert of slice 1's ``OrderIntended``) so that the test does not
depend on timing: another process holding ``BEGIN EXCLUSIVE`` past the busy timeout;
``PRAGMA query_only`` on the writer's connection (root ignores chmod, so a read-only file
cannot be made with permissions); ``PRAGMA max_page_count`` pinned to the current size (any
write that needs a new page fails with SQLITE_FULL, as on a full disk).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import event as sa_event
from structlog.testing import capture_logs

from genesis.config import parse_config
from genesis.engine.venues import build_sim_venue
from genesis.store import db as store_db
from tests.harness import harness

CONFIG = parse_config({"router": {"maker_first": False}})
SLICE_1_INTENT = '"slice_index":1,'
HEAL_AFTER_FAILURES = 3


class IntentProbe:
    """The simulated venue, checking for every order it receives that the order's
    ``OrderIntended`` is committed, through a separate read-only connection."""

    def __init__(self, inner: Any, db_path: Path, faulted: Callable[[], bool]):
        self.inner, self.db_path, self.faulted = inner, db_path, faulted
        self.sent: list[tuple[str, bool, bool]] = []  # (client id, intent committed, storage faulted)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def place_order(self, request: Any) -> Any:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            (n,) = conn.execute("SELECT COUNT(*) FROM events WHERE event_type = 'OrderIntended' AND "
                                "json_extract(event_data, '$.client_order_id') = ?",
                                (request.client_order_id,)).fetchone()
        finally:
            conn.close()
        self.sent.append((request.client_order_id, n == 1, self.faulted()))
        return await self.inner.place_order(request)


@dataclass
class Fault:
    """Switched on by the statement inserting slice 1's intent; off after ``HEAL_AFTER_FAILURES``
    refused commits. ``on``/``off`` run in the writer thread with its DBAPI connection."""

    on: Callable[[Any], None]
    off: Callable[[Any], None]
    active: bool = False
    healed: bool = False
    failures: list[str] = field(default_factory=list)

    def refusing(self) -> bool:
        """The store has refused a commit and not yet recovered."""
        return self.active and bool(self.failures)

    def install(self, engine: Any) -> None:
        @sa_event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            dbapi = conn.connection.dbapi_connection
            if not self.active and not self.healed and statement.startswith("INSERT INTO events") \
                    and SLICE_1_INTENT in str(parameters):
                self.active = True
                self.on(dbapi)
            elif self.active and len(self.failures) >= HEAL_AFTER_FAILURES:
                self.active, self.healed = False, True
                self.off(dbapi)

        @sa_event.listens_for(engine, "handle_error")
        def failed(context):  # type: ignore[no-untyped-def]
            if self.active:
                self.failures.append(str(context.original_exception))


async def run_with(tmp_path: Path, fault: Fault) -> tuple[Any, IntentProbe, list[dict[str, Any]]]:
    db_path = tmp_path / "genesis.db"
    probe: list[IntentProbe] = []

    def venue(clock):  # type: ignore[no-untyped-def]
        probe.append(IntentProbe(build_sim_venue(clock, CONFIG), db_path, fault.refusing))
        return probe[0]

    with capture_logs() as logs:
        async with harness(db_path, CONFIG, venue=venue, commit_in="thread") as h:
            fault.install(h.store.writer_engine)
            execution_id = await h.supervisor.submit(h.request(qty="1.2", duration="10m", slices=6))
            await h.supervisor.wait_all()
            agg = await h.store.load(execution_id)
    return agg, probe[0], logs


def assert_failed_closed_and_recovered(agg: Any, probe: IntentProbe, logs: list[dict[str, Any]],
                                       fault: Fault, reason: str) -> None:
    assert fault.healed and len(fault.failures) >= HEAL_AFTER_FAILURES
    assert all(reason in f for f in fault.failures), fault.failures
    # no order without its durable intent; none at all while the store refused writes
    assert probe.sent and all(committed for _, committed, _ in probe.sent), probe.sent
    assert not any(during for _, _, during in probe.sent), probe.sent
    halted = [e for e in logs if e["event"] == "storage_fault_trading_halted"]
    assert halted and all(reason in e["error"] for e in halted)
    assert all(e["log_level"] == "error" and e["execution_id"] == agg.execution_id for e in halted)
    # (rate limited: the first refusal, then one line per interval; tests/test_storage_fault_log.py)
    # resumed: the whole parent filled, every child order the venue saw is recorded
    assert (agg.state.value, agg.filled_qty) == ("completed", Decimal("1.2"))
    assert {cid for cid, _, _ in probe.sent} == set(agg.orders)


async def test_database_locked_by_another_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 200)  # "beyond the busy timeout" in a fifth of a second
    db_path = tmp_path / "genesis.db"
    locker: list[subprocess.Popen[str]] = []
    script = ("import sqlite3, sys\n"
              f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
              "c.execute('BEGIN EXCLUSIVE')\n"
              "print('locked', flush=True)\n"
              "sys.stdin.readline()\n"
              "c.execute('ROLLBACK')\n")

    def lock(_dbapi: Any) -> None:
        proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        locker.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"

    def unlock(_dbapi: Any) -> None:
        out, _ = locker[0].communicate("release\n", timeout=30)
        assert locker[0].returncode == 0

    fault = Fault(lock, unlock)
    try:
        agg, probe, logs = await run_with(tmp_path, fault)
    finally:
        for proc in locker:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert_failed_closed_and_recovered(agg, probe, logs, fault, "database is locked")


async def test_read_only_database(tmp_path: Path) -> None:
    fault = Fault(lambda c: c.execute("PRAGMA query_only=ON"), lambda c: c.execute("PRAGMA query_only=OFF"))
    agg, probe, logs = await run_with(tmp_path, fault)
    assert_failed_closed_and_recovered(agg, probe, logs, fault, "readonly database")


async def test_disk_full(tmp_path: Path) -> None:
    """The file may not grow by a single page from slice 1's intent on: every write that fits
    the existing pages still succeeds (as on a full disk), the first that needs space fails."""
    def full(c: Any) -> None:
        (pages,) = c.execute("PRAGMA page_count").fetchone()
        c.execute(f"PRAGMA max_page_count={pages}")

    fault = Fault(full, lambda c: c.execute("PRAGMA max_page_count=1073741823"))
    agg, probe, logs = await run_with(tmp_path, fault)
    assert_failed_closed_and_recovered(agg, probe, logs, fault, "database or disk is full")
