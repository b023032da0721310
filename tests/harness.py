"""In-process engine for tests: a migrated SQLite file, the event store, the simulated venue
on a virtual clock and a supervisor, wired like the daemon wires them."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import AsyncIterator, Callable

from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.bus import EventBus
from genesis.clock import VirtualClock
from genesis.config import RuntimeConfig
from genesis.engine.venues import build_sim_venue
from genesis.engine.supervisor import Supervisor, build_supervisor
from genesis.requests import SubmitRequest, validate_submit
from genesis.store import migrate
from genesis.store import tables as t
from genesis.store.db import async_engine
from genesis.store.eventstore import EventStore
from genesis.venue.instruments import SIM_INSTRUMENTS

SIM_START = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


@dataclass
class Harness:
    engine: AsyncEngine
    bus: EventBus
    store: EventStore
    clock: VirtualClock
    venue: object
    supervisor: Supervisor
    config: RuntimeConfig

    def request(self, **overrides: object) -> SubmitRequest:
        fields: dict[str, object] = dict(symbol="BTC/USDT", side="buy", qty="2.5", algo="twap",
                                         duration="15m", slices=None, limit_price=None, request_id=None)
        fields.update(overrides)
        return validate_submit(**fields, instruments=SIM_INSTRUMENTS, config=self.config)  # type: ignore[arg-type]

    async def rows(self, table) -> list[dict]:  # type: ignore[no-untyped-def]
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]

    async def execution_row(self, execution_id: str) -> dict:
        async with self.engine.connect() as conn:
            return dict((await conn.execute(
                select(t.executions).where(t.executions.c.execution_id == execution_id))).mappings().one())


@asynccontextmanager
async def harness(db_path: Path | URL, config: RuntimeConfig | None = None, start: datetime = SIM_START,
                  venue: Callable[[VirtualClock], object] | None = None,
                  commit_in: str | None = None) -> AsyncIterator[Harness]:
    """``venue`` builds the venue on the harness' clock (default: the shipped-candle simulator).
    ``commit_in``: the store's committer (``"thread"`` takes SQLAlchemy hooks on its engine;
    default: the backend's own, see ``EventStore``). ``db_path``: a file or a PostgreSQL URL."""
    config = config or RuntimeConfig()
    migrate.upgrade(db_path)
    engine = async_engine(db_path)
    bus = EventBus()
    store = EventStore(engine, bus, commit_in=commit_in)
    await store.start()
    clock = VirtualClock(start)
    venue_obj = venue(clock) if venue else build_sim_venue(clock, config)
    supervisor = build_supervisor(store, venue_obj, clock, SIM_INSTRUMENTS, config)  # type: ignore[arg-type]
    try:
        yield Harness(engine, bus, store, clock, venue_obj, supervisor, config)
    finally:
        await supervisor.shutdown(1.0)
        await store.stop()
        await bus.close()
        await engine.dispose()


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
