"""What the API reads and writes, on a blocking engine in worker threads (the event loop never
waits for SQLite): the read models ``genesis status`` uses, the event log of one execution,
and the command inbox ``genesis submit`` writes to, so exactly-once holds whichever door an
order came in by."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from genesis.domain.state import TERMINAL_STATES
from genesis.requests import SubmitRequest
from genesis.store import tables as t
from genesis.store.db import sync_engine
from genesis.store.inbox import enqueue_control, enqueue_submit
from genesis.store.queries import execution_status

TERMINAL = frozenset(s.value for s in TERMINAL_STATES) | {"rejected"}


class StoreAccess:
    """Reads and inbox writes on the database at ``db_path``."""

    def __init__(self, db_path: str | Path):
        self.engine: Engine = sync_engine(db_path)

    async def submit(self, req: SubmitRequest) -> tuple[str, bool]:
        """``enqueue_submit``: ``(execution_id, created)``; ``RequestError`` (field ``id``) when
        the request id was used for a different order."""
        return await asyncio.to_thread(enqueue_submit, self.engine, req)

    async def control(self, kind: str, execution_id: str, payload: dict[str, Any] | None = None) -> int:
        """``enqueue_control``: the command id; ``RequestError`` when the execution is unknown."""
        return await asyncio.to_thread(enqueue_control, self.engine, kind, execution_id, payload)

    async def executions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(execution_status, self.engine)
        rows = [r for r in rows if state is None or r["state"] == state]
        return rows[-limit:]

    async def execution(self, execution_id: str) -> dict[str, Any] | None:
        rows = await asyncio.to_thread(execution_status, self.engine, execution_id)
        return rows[0] if rows else None

    async def events(self, execution_id: str, after_sequence: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._events, execution_id, after_sequence, limit)

    def _events(self, execution_id: str, after_sequence: int, limit: int) -> list[dict[str, Any]]:
        e = t.events.c
        q = (select(e.sequence_number, e.event_type, e.aggregate_version, e.occurred_at, e.event_data)
             .where((e.aggregate_id == execution_id) & (e.sequence_number > after_sequence))
             .order_by(e.sequence_number).limit(limit))
        with self.engine.connect() as conn:
            return [{"sequence_number": r.sequence_number, "event_type": r.event_type,
                     "version": r.aggregate_version, "occurred_at": r.occurred_at.isoformat(),
                     "data": json.loads(r.event_data)} for r in conn.execute(q)]

    def close(self) -> None:
        self.engine.dispose()
