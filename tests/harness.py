"""In-process engine for tests: a migrated SQLite file, the event store, the simulated venue
on a virtual clock and a supervisor, wired by the daemon's wiring (``genesis.runtime.wiring``)."""

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
from genesis.engine.hooks import NO_HOOKS, EngineHooks
from genesis.engine.supervisor import Supervisor
from genesis.engine.venues import build_sim_venue
from genesis.requests import SubmitRequest, validate_submit
from genesis.runtime.wiring import EngineOptions, build_engine
from genesis.store import migrate
from genesis.store import tables as t
from genesis.store.eventstore import EventStore
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.migrated import migrated_sqlite

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
                  commit_in: str | None = None, hooks: EngineHooks = NO_HOOKS) -> AsyncIterator[Harness]:
    """The engine as ``genesis.runtime.wiring`` builds it. ``venue`` builds the venue on the
    harness' clock (default: the shipped-candle simulator). ``commit_in``: the store's
    committer (``"thread"`` takes SQLAlchemy hooks on its engine; default: the backend's own,
    see ``EventStore``). ``db_path``: a file or a PostgreSQL URL. ``hooks``: the engine's."""
    config = config or RuntimeConfig()
    if isinstance(db_path, Path):
        migrated_sqlite(db_path)  # a new file: a copy of the session's migrated template
    else:
        migrate.upgrade(db_path)
    clock = VirtualClock(start)
    make_venue = venue or (lambda c: build_sim_venue(c, config))
    engine = await build_engine(db_path, config, clock, make_venue, SIM_INSTRUMENTS,  # type: ignore[arg-type]
                                EngineOptions(commit_in=commit_in, candle_cache=False, hooks=hooks))
    assert engine.supervisor is not None
    try:
        yield Harness(engine.database, engine.bus, engine.store, clock, engine.venue, engine.supervisor, config)
    finally:
        await engine.close(close_venue=False)


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
