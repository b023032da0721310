"""``GET /v1/stream``: committed events as Server-Sent Events.

One bus subscriber (``StreamHub.publish``, synchronous, never blocks) copies each event into
every connected client's bounded queue. A client that falls ``queue_size`` events behind is
sent ``event: lagged`` and disconnected (it reconnects and re-reads the state with GET): the
engine and the other clients never wait for it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from genesis.bus import EventBus
from genesis.domain.codec import encode
from genesis.domain.events import Event

HEARTBEAT_SECONDS = 15.0
CLIENT_QUEUE_SIZE = 1_000


@dataclass(eq=False)
class _Client:
    execution_id: str | None
    event_types: frozenset[str] | None
    queue: asyncio.Queue[Event | None]
    lagged: bool = False
    closed: bool = False
    sent: int = field(default=0)

    def wants(self, event: Event) -> bool:
        return ((self.execution_id is None or event.execution_id == self.execution_id)
                and (self.event_types is None or event.event_type in self.event_types))


class StreamHub:
    """Fans the bus out to the SSE clients."""

    def __init__(self, queue_size: int = CLIENT_QUEUE_SIZE, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self._clients: set[_Client] = set()
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.disconnected_lagging = 0

    def attach(self, bus: EventBus) -> None:
        """Subscribe to every event on ``bus`` (call inside the running loop)."""
        bus.subscribe(f"api-stream-{id(self):x}", self.publish, maxsize=10 * self.queue_size)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, event: Event) -> None:
        for client in self._clients:
            if client.lagged or not client.wants(event):
                continue
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                client.lagged = True
                self.disconnected_lagging += 1

    def close(self) -> None:
        """End every stream (daemon shutdown)."""
        for client in self._clients:
            client.closed = True
            try:
                client.queue.put_nowait(None)
            except asyncio.QueueFull:
                client.lagged = True

    async def serve(self, request: web.Request, execution_id: str | None,
                    event_types: frozenset[str] | None) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        client = _Client(execution_id, event_types, asyncio.Queue(self.queue_size))
        self._clients.add(client)
        try:
            await response.write(b": genesis event stream\n\n")
            await self._pump(client, response)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            self._clients.discard(client)
        return response

    async def _pump(self, client: _Client, response: web.StreamResponse) -> None:
        while not client.closed:
            if client.lagged:
                note = {"error": f"this client fell {self.queue_size} events behind and was disconnected",
                        "fix": "reconnect and re-read the state with GET /v1/executions"}
                await response.write(f"event: lagged\ndata: {json.dumps(note)}\n\n".encode())
                return
            try:
                event = await asyncio.wait_for(client.queue.get(), self.heartbeat_seconds)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                return
            await response.write(sse_message(event))
            client.sent += 1


def sse_message(event: Event) -> bytes:
    """One SSE message: ``event:`` is the event type, ``data:`` one JSON line."""
    data = (f'{{"event_type":{json.dumps(event.event_type)},"execution_id":{json.dumps(event.execution_id)},'
            f'"occurred_at":"{event.occurred_at.isoformat()}","data":{encode(event)}}}')
    return f"event: {event.event_type}\ndata: {data}\n\n".encode()
