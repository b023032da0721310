"""Illegal parameters get Binance's 400 answers from the paper exchange, never a 500: times
out of range, negative or oversized integers, a request body that is not UTF-8. Over HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.test_paper_exchange import paper, raw, signed  # noqa: F401  (paper: the fixture)
from tests.test_venue_contract import KEY

NOT_A_LONG = "99999999999999999999"  # 20 digits


def illegal(param: str) -> dict[str, Any]:
    return {"code": -1100, "msg": f"Illegal characters found in parameter '{param}'; legal range is '^[0-9]{{1,19}}$'."}


def invalid(param: str) -> dict[str, Any]:
    return {"code": -1130, "msg": f"Data sent for parameter '{param}' is not valid."}


@pytest.mark.parametrize("query, answer", [
    ("startTime=99999999999999999", invalid("startTime")),  # after the year 9999
    ("startTime=9223372036854775807", invalid("startTime")),
    ("endTime=99999999999999999", invalid("endTime")),
    ("startTime=-1", illegal("startTime")),
    ("startTime=-99999999999999999", illegal("startTime")),
    ("endTime=-5", illegal("endTime")),
    ("endTime=" + NOT_A_LONG, illegal("endTime")),
    ("startTime=9999999999999999999", illegal("startTime")),  # 19 digits, more than a long
    ("limit=-3", illegal("limit")),
])
async def test_klines_with_times_out_of_range_are_refused_with_binance_codes(
        paper, query: str, answer: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = paper
    async with aiohttp.ClientSession() as s:
        got = await raw(s, "GET", f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&{query}")
    assert got == (400, answer)


@pytest.mark.parametrize("query", [
    "startTime=253402300799999",  # the last millisecond of 9999: legal, nothing has closed there
    "startTime=4102444800000&endTime=4102448400000",  # 2100
    "startTime=60000&endTime=1",  # starts after it ends
])
async def test_klines_in_the_future_or_backwards_are_empty(paper, query: str) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = paper
    async with aiohttp.ClientSession() as s:
        assert await raw(s, "GET", f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&{query}") == (200, [])


@pytest.mark.parametrize("path, params, answer", [
    ("/myTrades", {"symbol": "BTCUSDT", "startTime": "99999999999999999"}, invalid("startTime")),
    ("/myTrades", {"symbol": "BTCUSDT", "fromId": "9999999999999999999"}, illegal("fromId")),
    ("/order", {"symbol": "BTCUSDT", "orderId": "9999999999999999999"}, illegal("orderId")),
    ("/order", {"symbol": "BTCUSDT", "orderId": "-1"}, illegal("orderId")),
])
async def test_signed_reads_with_integers_out_of_range_are_refused(
        paper, path: str, params: dict[str, str], answer: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = paper
    async with aiohttp.ClientSession() as s:
        assert await raw(s, "GET", f"{server.url}/api/v3{path}?" + signed(params)) == (400, answer)


async def test_a_request_body_that_is_not_utf8_is_refused_and_audited(paper) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = paper
    body = signed({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}).encode()
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{server.url}/api/v3/order", data=b"newClientOrderId=g\xff\xfe&" + body,
                          headers={"X-MBX-APIKEY": KEY,
                                   "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert (resp.status, await resp.json()) == (
                400, {"code": -1100, "msg": "Illegal characters found in a parameter."})
    assert server.exchange.store.all_orders() == []
    audit = list(server.exchange.store.db.execute("SELECT http_status, error_code FROM requests"))
    assert audit == [(400, -1100)]
