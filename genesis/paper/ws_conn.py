"""One WebSocket client of the paper exchange: an outgoing queue drained by a writer task that
applies the stream faults (``genesis.paper.faults.StreamFaults``).

Pushed messages (``push``) go through the faults; replies to requests (``reply``) never do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from aiohttp import web

from genesis.paper.faults import StreamFaultInjector

log = structlog.get_logger("genesis.paper.ws")
QUEUE_LIMIT = 10_000  # a client that stops reading is dropped rather than buffered forever


class WsConnection:
    """A connected socket: ``push`` (faulted) and ``reply`` (not), closed with ``close``."""

    def __init__(self, ws: web.WebSocketResponse, faults: StreamFaultInjector, combined: bool):
        self.ws, self.faults, self.combined = ws, faults, combined
        self.streams: set[str] = set()
        self._queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())

    def push(self, payload: Any, stream: str | None = None) -> None:
        """Queue one stream message (wrapped ``{"stream", "data"}`` on a combined stream)."""
        if self.combined and stream is not None:
            payload = {"stream": stream, "data": payload}
        self._enqueue(True, json.dumps(payload))

    def reply(self, payload: Any) -> None:
        self._enqueue(False, json.dumps(payload))

    def _enqueue(self, faulted: bool, text: str) -> None:
        if self._queue.qsize() >= QUEUE_LIMIT:
            log.warning("ws_client_too_slow_dropped")
            self._writer.cancel()
            asyncio.ensure_future(self.ws.close())
            return
        self._queue.put_nowait((faulted, text))

    async def _write(self) -> None:
        held: str | None = None
        try:
            while True:
                faulted, text = await self._queue.get()
                fault = self.faults.decide() if faulted else None
                if fault == "stall":
                    continue
                if fault == "disconnect":
                    await self.ws.close()
                    return
                if fault == "out_of_order" and held is None:
                    held = text
                    continue
                await self.ws.send_str(text)
                if fault == "duplicate":
                    await self.ws.send_str(text)
                if held is not None and faulted:
                    await self.ws.send_str(held)
                    held = None
        except (ConnectionResetError, RuntimeError):  # the client went away mid-send
            return

    async def close(self) -> None:
        self._writer.cancel()
        await self.ws.close()
