"""PostgreSQL: a command inserted by the CLI's inbox functions wakes the daemon's listener
(``LISTEN/NOTIFY``) instead of waiting for the next poll; SQLite sends nothing."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from sqlalchemy.engine import URL

from genesis.domain.orders import Side
from genesis.engine.command_listener import listen_for_commands
from genesis.requests import SubmitRequest
from genesis.store.db import sync_engine
from genesis.store.inbox import enqueue_submit, enqueue_submits


async def test_each_inserted_command_wakes_the_listener(pg_db: URL) -> None:
    wakes = asyncio.Queue[int]()
    listener = asyncio.create_task(listen_for_commands(pg_db, lambda: wakes.put_nowait(1)))
    engine = sync_engine(pg_db)
    try:
        await asyncio.wait_for(wakes.get(), 30)  # the first wake: once listening
        await asyncio.to_thread(enqueue_submit, engine, SubmitRequest("BTC/USDT", Side.BUY, D("0.1"), "twap", 600, None, None, None))
        await asyncio.wait_for(wakes.get(), 30)
        await asyncio.to_thread(enqueue_submits, engine, [SubmitRequest("BTC/USDT", Side.SELL, D("0.1"), "twap", 600, None, None, None)])
        await asyncio.wait_for(wakes.get(), 30)
        assert wakes.empty()
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        engine.dispose()
