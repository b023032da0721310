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
from genesis.requests import RequestError, SubmitRequest
from genesis.store import tables as t
from genesis.store.db import sync_engine
from genesis.store.inbox import enqueue_control, enqueue_submit, enqueue_submits
from genesis.store.queries import execution_status

TERMINAL = frozenset(s.value for s in TERMINAL_STATES) | {"rejected"}


class StoreAccess:
    """Reads and inbox writes on the database at ``db_path``."""

    def __init__(self, db_path: str | Path):
        self.engine: Engine = sync_engine(db_path)
        self._waiting: list[tuple[SubmitRequest, asyncio.Future[tuple[str, bool]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, req: SubmitRequest) -> tuple[str, bool]:
        """``enqueue_submit``: ``(execution_id, created)``; ``RequestError`` (field ``id``) when
        the request id was used for a different order. Concurrent submissions share one
        transaction (group commit: one fsync, one writer thread, however many clients)."""
        future: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((req, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="api-inbox-writer")
        return await future

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await asyncio.to_thread(enqueue_submits, self.engine, [req for req, _ in batch])
            except RequestError:  # one reused id refuses the batch: each on its own, to refuse only it
                for req, future in batch:
                    await self._settle_one(req, future)
                continue
            except Exception as exc:  # task boundary: the callers get the failure, not a hang
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    async def _settle_one(self, req: SubmitRequest, future: asyncio.Future[tuple[str, bool]]) -> None:
        try:
            result = await asyncio.to_thread(enqueue_submit, self.engine, req)
        except Exception as exc:  # task boundary: handed to the caller
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

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
