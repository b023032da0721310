"""``GET /v1/stream`` in process: events as SSE, filters, and a client that falls behind is
told ``lagged`` and cut off while publishing never waits for it."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from genesis.api.access import StoreAccess
from genesis.api.app import HUB, ApiDeps, build_app
from genesis.api.tokens import TokenBook, ensure_token_file, token_path
from genesis.bus import EventBus
from genesis.config import RuntimeConfig
from genesis.domain import events as ev
from genesis.venue.instruments import SIM_INSTRUMENTS

AT = datetime(2025, 6, 10, 13, 0, tzinfo=timezone.utc)


@pytest.fixture
async def wired(db_path: Path) -> AsyncIterator[tuple[TestClient, EventBus, dict[str, str]]]:
    tokens = {t.role: t.token for t in ensure_token_file(token_path(db_path))}
    bus = EventBus()
    deps = ApiDeps(StoreAccess(db_path), TokenBook(token_path(db_path)), lambda: SIM_INSTRUMENTS, RuntimeConfig,
                   lambda: True, bus=bus)
    app = build_app(deps)
    app[HUB].queue_size = 5
    try:
        async with TestClient(TestServer(app)) as client:
            yield client, bus, {"Authorization": f"Bearer {tokens['read']}"}
    finally:
        await bus.close()


async def _messages(response, count: int) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    out: list[tuple[str, dict]] = []
    kind = ""
    while len(out) < count:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode()
        if not line:
            break
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: "):
            out.append((kind, json.loads(line[6:])))
    return out


async def _connected(hub_owner: TestClient) -> None:
    hub = hub_owner.server.app[HUB]
    for _ in range(200):
        if hub.clients:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stream client never connected")


async def test_events_arrive_filtered_by_execution_and_type(wired) -> None:  # type: ignore[no-untyped-def]
    client, bus, auth = wired
    response = await client.get("/v1/stream?execution_id=e1&types=ExecutionPaused", headers=auth)
    assert response.status == 200
    await _connected(client)
    bus.publish(ev.ExecutionResumed("e1", AT, "not this type"))
    bus.publish(ev.ExecutionPaused("e2", AT, "not this execution"))
    bus.publish(ev.ExecutionPaused("e1", AT, "this one"))
    [(kind, message)] = await _messages(response, 1)
    assert kind == "ExecutionPaused" and message["execution_id"] == "e1"
    assert message["data"]["reason"] == "this one" and message["occurred_at"] == AT.isoformat()


async def test_a_client_that_falls_behind_is_cut_off_and_publishing_never_waits(wired) -> None:  # type: ignore[no-untyped-def]
    client, bus, auth = wired
    response = await client.get("/v1/stream", headers=auth)
    await _connected(client)
    for n in range(50):  # in one go: the stream gets no turn to write in between
        bus.publish(ev.ExecutionPaused("e1", AT, f"burst {n}"))
    await bus.drain()  # the hub took all 50 without waiting for the client
    messages = await _messages(response, 50)
    kinds = [kind for kind, _ in messages]
    assert kinds[-1] == "lagged" and "reconnect" in messages[-1][1]["fix"]
    assert 1 <= len(kinds) - 1 <= 5 and set(kinds[:-1]) == {"ExecutionPaused"}
    assert await response.content.read() == b""  # the server ended the stream


async def test_the_stream_needs_a_token_but_takes_it_as_a_query_parameter(wired) -> None:  # type: ignore[no-untyped-def]
    client, _bus, auth = wired
    assert (await client.get("/v1/stream")).status == 401
    token = auth["Authorization"].split()[1]
    response = await client.get(f"/v1/stream?access_token={token}")
    assert response.status == 200
    response.close()
