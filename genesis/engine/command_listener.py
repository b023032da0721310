"""PostgreSQL: the daemon hears new commands through ``LISTEN genesis_commands`` (and a
standby hears lease releases through ``LISTEN genesis_leases``).

The CLI and the API send ``NOTIFY genesis_commands`` in the transaction that inserts a
command (``genesis.store.inbox.notify_daemon``); ``listen_for_commands`` calls ``wake()`` for
each notification, so the command poller reads the inbox at once. The poll stays as the safety
net (a notification sent while the listening connection was down is not replayed), and the
listener reconnects after a lost connection.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import structlog
from sqlalchemy.engine import URL

from genesis.store.inbox import COMMANDS_CHANNEL
from genesis.store.leases import LEASES_CHANNEL

log = structlog.get_logger("genesis.inbox")

RECONNECT_SECONDS = 2.0


async def listen_for_commands(url: URL, wake: Callable[[], None]) -> None:
    """Until cancelled: ``wake()`` on every ``NOTIFY genesis_commands``."""
    await listen(url, COMMANDS_CHANNEL, wake)


async def listen_for_lease_releases(url: URL, wake: Callable[[], None]) -> None:
    """Until cancelled: ``wake()`` on every ``NOTIFY genesis_leases`` (a daemon released its leases)."""
    await listen(url, LEASES_CHANNEL, wake)


async def listen(url: URL, channel: str, wake: Callable[[], None]) -> None:
    """Until cancelled: ``wake()`` once listening (what came before) and on every ``NOTIFY channel``;
    reconnects after a lost connection."""
    import psycopg

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                wake()  # anything that happened before LISTEN took effect
                log.info("listener_listening", channel=channel)
                async for _ in conn.notifies():
                    wake()
        except psycopg.Error as exc:
            log.error("listener_failed", channel=channel, error=str(exc).strip(), retry_seconds=RECONNECT_SECONDS)
            await asyncio.sleep(RECONNECT_SECONDS)
