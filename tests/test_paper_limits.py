"""Binance's REST limits on the paper exchange: request weight per IP per (simulated) minute
with 429 then 418, orders per 10 s and per day per account (-1015), and the usage headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import ccxt.async_support as ccxt
import pytest

from genesis.clock import VirtualClock
from genesis.paper.limits import Limits, request_weight
from genesis.paper.server import PaperServer
from tests.test_paper_exchange import signed, start
from tests.test_venue_contract import KEY, minute


async def limited(tmp_path: Path, clock: VirtualClock, **limits: Any) -> PaperServer:
    return await start(tmp_path, clock, limits=Limits(**limits))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def test_published_weights_of_the_served_endpoints() -> None:
    assert request_weight("GET", "/api/v3/exchangeInfo", {}) == 20
    assert request_weight("GET", "/api/v3/depth", {"symbol": "BTCUSDT"}) == 5
    assert request_weight("GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "1000"}) == 50
    assert request_weight("GET", "/api/v3/klines", {"symbol": "BTCUSDT"}) == 2
    assert request_weight("GET", "/api/v3/ticker/24hr", {}) == 80
    assert request_weight("POST", "/api/v3/order", {}) == 1
    assert request_weight("GET", "/api/v3/order", {}) == 4
    assert request_weight("GET", "/api/v3/openOrders", {}) == 80
    assert request_weight("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}) == 20
    assert request_weight("GET", "/api/v3/account", {}) == 20


async def test_hammering_rest_gets_429_with_retry_after_then_a_418_ban(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    clock = VirtualClock(minute(0.5))
    server = await limited(tmp_path, clock, weight_per_minute=100, ban_after_429s=3)
    url = server.url + "/api/v3/klines?symbol=BTCUSDT&interval=1m"  # weight 2
    try:
        used = []
        for _ in range(50):
            async with session.get(url) as resp:
                assert resp.status == 200
                used.append(int(resp.headers["X-MBX-USED-WEIGHT-1M"]))
        assert used == list(range(2, 101, 2))
        async with session.get(url) as resp:
            assert (resp.status, (await resp.json())["msg"][:78]) == (
                429, "Too much request weight used; current limit is 100 request weight per 1 MINUTE")
        statuses = []
        for _ in range(3):
            async with session.get(url) as resp:
                statuses.append((resp.status, resp.headers["Retry-After"],
                                 (await resp.json())["code"]))
        # 30 simulated seconds to the next minute = 30 wall seconds at speed 1
        assert statuses == [(429, "30", -1003)] * 2 + [(418, "120", -1003)]
        async with session.get(url) as resp:
            assert (await resp.json())["msg"].startswith(
                "Way too much request weight used; IP banned until ")
        clock.advance_to(minute(1.5))  # a new minute, but still banned (2 minutes)
        async with session.get(url) as resp:
            assert resp.status == 418 and "IP banned until" in (await resp.json())["msg"]
        clock.advance_to(minute(3))
        async with session.get(url) as resp:
            assert (resp.status, resp.headers["X-MBX-USED-WEIGHT-1M"]) == (200, "2")
        client = ccxt.binance({"enableRateLimit": False})  # ccxt: DDoSProtection
        client.urls["api"]["public"] = server.url + "/api/v3"
        server.app.limiter.limits = Limits(weight_per_minute=1)
        try:
            with pytest.raises(ccxt.DDoSProtection, match="429"):
                await client.public_get_klines({"symbol": "BTCUSDT", "interval": "1m"})
        finally:
            await client.close()
    finally:
        await server.stop()


async def test_too_many_new_orders_is_1015_with_order_count_headers(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    clock = VirtualClock(minute(0.5))
    server = await limited(tmp_path, clock, orders_per_10s=3, orders_per_day=5)
    headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}

    async def buy() -> tuple[int, Any, Any]:
        body = signed({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "quantity": "0.1", "price": "90"})
        async with session.post(server.url + "/api/v3/order", data=body, headers=headers) as r:
            return r.status, await r.json(), (r.headers["X-MBX-ORDER-COUNT-10S"],
                                              r.headers["X-MBX-ORDER-COUNT-1D"],
                                              r.headers["X-MBX-USED-WEIGHT-1M"])
    try:
        results = [await buy() for _ in range(4)]
        assert [(s, h) for s, _, h in results] == [
            (200, ("1", "1", "1")), (200, ("2", "2", "2")), (200, ("3", "3", "3")),
            (429, ("4", "4", "4"))]
        assert results[3][1] == {"code": -1015, "msg": "Too many new orders; current limit is 3 "
                                                       "orders per 10 SECOND."}
        clock.advance_to(minute(0.5) + (minute(1) - minute(0.75)))  # the next 10 s
        assert (await buy())[0] == 200
        clock.advance_to(minute(1))
        status, body, counts = await buy()
        assert (status, body["code"], counts[1]) == (429, -1015, "6")
        assert "5 orders per 1 DAY" in body["msg"]
    finally:
        await server.stop()


async def test_no_limits_turns_them_off_but_keeps_the_headers(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    clock = VirtualClock(minute(0.5))
    server = await limited(tmp_path, clock, weight_per_minute=1, enabled=False)
    try:
        for n in range(1, 4):
            async with session.get(server.url + "/api/v3/ping") as resp:
                assert (resp.status, resp.headers["X-MBX-USED-WEIGHT-1M"]) == (200, str(n))
    finally:
        await server.stop()


def test_command_options_set_limits_and_stream_faults(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from genesis.cli import main as cli
    from genesis.paper import server
    from genesis.paper.faults import StreamFaults

    seen: dict[str, Any] = {}

    async def fake_serve(*args: Any) -> None:
        seen["limits"], seen["stream_faults"] = args[-2], args[-1]

    monkeypatch.setattr(server, "serve", fake_serve)
    state = ["paper-exchange", "--state", str(tmp_path / "paper.db")]
    result = CliRunner().invoke(cli, [*state, "--limits", "weight_per_minute=1200",
                                      "--no-limits", "--stream-faults", "p_duplicate=0.5"], env={})
    assert result.exit_code == 0, result.output
    assert seen == {"limits": Limits(weight_per_minute=1200, enabled=False),
                    "stream_faults": StreamFaults(p_duplicate=0.5)}
    result = CliRunner().invoke(cli, [*state, "--limits", "orders_per_10s=lots"], env={})
    assert result.exit_code == 2
    assert "Invalid value for --limits: orders_per_10s must be an integer, got 'lots'" in (
        result.output)


def test_windows_are_simulated_time_and_waits_are_wall_time_at_speed() -> None:
    from genesis.paper import binance_json as bj
    from genesis.paper.limits import RateLimiter

    limiter = RateLimiter(Limits(weight_per_minute=10, ban_after_429s=1, ban_minutes=2), speed=60)
    assert limiter.charge("ip", 10, sim_ms=0, wall_ms=0) == {"X-MBX-USED-WEIGHT-1M": "10"}
    with pytest.raises(bj.BinanceError) as over:
        limiter.charge("ip", 1, sim_ms=30_000, wall_ms=500)
    assert (over.value.http_status, over.value.headers["Retry-After"]) == (429, "1")  # 30 s / 60
    with pytest.raises(bj.BinanceError) as banned:
        limiter.charge("ip", 1, sim_ms=30_000, wall_ms=500)
    # a 2-minute ban is 2 wall seconds at speed 60, said in wall-clock milliseconds
    assert (banned.value.http_status, banned.value.headers["Retry-After"]) == (418, "2")
    assert "IP banned until 2500." in banned.value.msg
    assert limiter.charge("other-ip", 1, sim_ms=30_000, wall_ms=500)  # per IP
    assert limiter.charge("ip", 1, sim_ms=150_000, wall_ms=2_500) == {"X-MBX-USED-WEIGHT-1M": "1"}
    for _ in range(9):  # over again: the second ban lasts twice as long
        limiter.charge("ip", 1, sim_ms=160_000, wall_ms=2_700)
    with pytest.raises(bj.BinanceError):
        limiter.charge("ip", 1, sim_ms=160_000, wall_ms=2_700)
    with pytest.raises(bj.BinanceError) as second:
        limiter.charge("ip", 1, sim_ms=160_000, wall_ms=2_700)
    assert (second.value.http_status, second.value.headers["Retry-After"]) == (418, "4")
