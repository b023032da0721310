"""Health and readiness checks, and the aiohttp routes that serve them with /metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from genesis.observability.health import StoreHealth, healthz, readiness
from genesis.observability.http import healthz_route, metrics_route, readyz_route
from genesis.observability.metrics import MetricsCollector
from genesis.observability.venue_watch import VenueTracker, WatchedVenue, read_venue_usage
from genesis.venue.base import PermanentVenueError, UnknownOutcomeError
from genesis.venue.order_budget import OrderBudget


async def test_readiness_passes_only_when_every_check_does():
    store = StoreHealth(lambda: True)
    ok, details = await readiness({"store": store.check})
    assert ok and details["store"]["ok"]
    store.on_commit(0.01, False)
    ok, details = await readiness({"store": store.check})
    assert not ok and "refused" in details["store"]["detail"]

    async def lease_held():
        return True, "lease held"

    async def hangs():
        await asyncio.sleep(3600)

    def broken():
        raise RuntimeError("boom")

    ok, details = await readiness({"lease": lease_held, "slow": hangs, "broken": broken}, timeout_seconds=0.01)
    assert not ok
    assert details["lease"] == {"ok": True, "detail": "lease held"}
    assert not details["slow"]["ok"] and "no answer" in details["slow"]["detail"]
    assert details["broken"]["detail"] == "check raised RuntimeError: boom"
    assert healthz()[0] is True


class _FlakyVenue:
    name = "flaky"
    budget = OrderBudget(limit=10)

    def __init__(self):
        self.errors: list[Exception] = []

    async def book_top(self, symbol):
        if self.errors:
            raise self.errors.pop(0)
        return "top"


async def test_watched_venue_counts_errors_and_notices_a_venue_down():
    changes = []
    collector = MetricsCollector()
    tracker = VenueTracker("flaky", down_after_errors=2, on_change=lambda down, v, d: changes.append(down))
    inner = _FlakyVenue()
    venue = WatchedVenue(inner, [collector, tracker])
    inner.errors = [PermanentVenueError("bad symbol"), UnknownOutcomeError("timeout"), UnknownOutcomeError("timeout")]
    for _ in range(3):
        try:
            await venue.book_top("BTC/USDT")
        except (PermanentVenueError, UnknownOutcomeError):
            pass
    assert tracker.down and changes == [True]
    assert await venue.book_top("BTC/USDT") == "top"  # the same result through the wrapper
    assert not tracker.down and changes == [True, False]
    assert venue.name == "flaky" and venue.budget is inner.budget
    collector.watch(venue_usage=lambda: read_venue_usage(venue))
    text = collector.render()[0].decode()
    assert 'genesis_venue_errors_total{call="book_top",error_class="UnknownOutcomeError"} 2.0' in text
    assert 'genesis_venue_errors_total{call="book_top",error_class="PermanentVenueError"} 1.0' in text
    assert "genesis_order_budget_capacity 10.0" in text
    assert "genesis_request_weight_used" not in text  # the venue does not expose it (yet)


async def test_routes_mount_on_an_aiohttp_app():
    collector = MetricsCollector()
    collector.slices.labels("filled", "twap").inc()
    failing = {"ready": False}
    app = web.Application()
    app.add_routes([metrics_route(collector), healthz_route(),
                    readyz_route(lambda: {"venue": lambda: (not failing["ready"], "x")})])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        assert 'genesis_slices_total{algo="twap",outcome="filled"} 1.0' in await response.text()
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        failing["ready"] = True
        response = await client.get("/readyz")
        assert response.status == 503 and (await response.json())["checks"]["venue"]["ok"] is False
