"""Rebuild the vcrpy cassettes in this directory from the recorded Binance data.

    python tests/cassettes/build_cassettes.py [--shared ../shared/data/exchange_responses]

Sources (see README.md here for provenance and licences): ccxt's static Binance fixtures
(MIT) and the noobit-markets Binance REST cassettes (Binance public data). The GPL-3.0
aiobinance cassettes are never copied here. Response bodies are the recorded bytes, except
the exchangeInfo, trimmed to four symbols. Error bodies are Binance's documented error
texts (they are not recordings) and are marked ``# documented`` in the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parents[2] / "shared" / "data" / "exchange_responses"  # ../shared
API = "https://api.binance.com/api/v3"
CID = "g0123456789ab-0-0"  # the client order id the tests send
KEEP_SYMBOLS = ("BTCUSDT", "ETHUSDT", "LTCUSDT", "SOLUSDT")
JSON_HEADERS = {"Content-Type": ["application/json;charset=UTF-8"]}
_DROP_HEADERS = {"content-encoding", "content-length"}  # bodies are stored decoded


def interaction(method: str, uri: str, body: Any, status: int = 200,
                headers: dict[str, list[str]] | None = None, request_body: str | None = None,
                message: str = "OK") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return {"request": {"method": method, "uri": uri, "body": request_body, "headers": {}},
            "response": {"status": {"code": status, "message": message},
                         "headers": headers or dict(JSON_HEADERS), "body": {"string": text}}}


def write(name: str, interactions: list[dict[str, Any]]) -> None:
    path = HERE / name
    path.write_text(yaml.safe_dump({"version": 1, "interactions": interactions}, sort_keys=False,
                                   width=100), encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(interactions)} interactions)")


def noobit(shared: Path, name: str) -> tuple[str, Any, dict[str, list[str]]]:
    """(uri, body text, headers) of the single interaction of a noobit aiohttp cassette."""
    data = yaml.safe_load((shared / "vcr_cassettes/noobit_markets_binance" / name).read_text())
    it = data["interactions"][0]
    response = it["response"]
    body = response["body"]["string"] if "body" in response else response["content"]
    headers = {k: v for k, v in response.get("headers", {}).items()
               if k.lower() not in _DROP_HEADERS and isinstance(v, list)}
    return it["request"]["uri"], body, headers


def ccxt_case(responses: dict[str, Any], method: str, description: str) -> Any:
    for case in responses["methods"][method]:
        if case["description"] == description:
            return case["httpResponse"]
    raise KeyError(f"{method}: no case {description!r}")


def build(shared: Path) -> None:
    static = json.loads((shared / "ccxt_static/binance_response.json").read_text())

    # exchangeInfo (noobit, 2020-10-26), trimmed to the symbols the tests use
    uri, body, headers = noobit(shared, "test_rest_binance_symbols__test_symbols.yaml")
    info = json.loads(body)
    info["symbols"] = [s for s in info["symbols"] if s["symbol"] in KEEP_SYMBOLS]
    write("binance_markets.yaml", [interaction("GET", uri, info, headers=headers)])

    uri, body, headers = noobit(shared, "test_rest_binance_orderbook__test_orderbook_aiohttp.yaml")
    write("binance_order_book.yaml", [interaction("GET", uri, body, headers=headers)])

    uri, body, headers = noobit(shared, "test_rest_binance_ohlc__test_ohlc_aiohttp.yaml")
    write("binance_klines.yaml", [interaction("GET", uri, body, headers=headers)])

    # private endpoints: URLs as in ccxt's request fixtures, bodies from its response fixtures
    create_body = (f"symbol=SOLUSDT&side=BUY&newClientOrderId={CID}&newOrderRespType=FULL"
                   "&type=LIMIT"
                   "&quantity=0.05&price=241&timeInForce=GTC")
    write("binance_create_order.yaml", [interaction(
        "POST", f"{API}/order", ccxt_case(static, "createOrder", "spot +selfTradePrevention +iceberg"),
        request_body=create_body)])

    open_order = ccxt_case(static, "fetchOpenOrders", "Fetch spot open orders")[0]
    write("binance_fetch_order_open.yaml", [interaction(
        "GET", f"{API}/order?symbol=LTCUSDT&origClientOrderId={CID}", open_order)])

    spot_trades = ccxt_case(static, "fetchMyTrades", "Spot private trade")
    write("binance_fetch_order_filled.yaml", [
        interaction("GET", f"{API}/order?symbol=LTCUSDT&origClientOrderId={CID}",
                    ccxt_case(static, "fetchOrder", "Fetch spot closed order")),
        interaction("GET", f"{API}/myTrades?symbol=LTCUSDT&orderId=3397148653&limit=1000",
                    spot_trades)])
    write("binance_my_trades.yaml", [interaction(
        "GET", f"{API}/myTrades?symbol=LTCUSDT&orderId=3784695242&limit=1000", spot_trades)])

    cancelled = ccxt_case(static, "fetchOrders", "fetch spot orders")[0]
    write("binance_cancel_order.yaml", [interaction(
        "DELETE", f"{API}/order?symbol=LTCUSDT&origClientOrderId={CID}", cancelled)])

    write("binance_balance.yaml", [interaction(
        "GET", f"{API}/account", ccxt_case(static, "fetchBalance", "Spot balance"))])

    # documented Binance error bodies (not recordings)
    def err(code: int, msg: str, status: int = 400, retry_after: str | None = None,
            method: str = "POST", uri: str = f"{API}/order") -> dict[str, Any]:
        headers = dict(JSON_HEADERS)
        if retry_after is not None:
            headers["Retry-After"] = [retry_after]
        return interaction(method, uri, {"code": code, "msg": msg}, status, headers,
                           request_body=create_body if method == "POST" else None,
                           message={400: "Bad Request", 418: "I'm a teapot",
                                    429: "Too Many Requests"}[status])

    write("binance_error_duplicate.yaml", [err(-2010, "Duplicate order sent.")])
    write("binance_error_insufficient_balance.yaml",
          [err(-2010, "Account has insufficient balance for requested action.")])
    write("binance_error_429.yaml", [err(-1003, "Too much request weight used; current limit is "
                                         "6000 request weight per 1 MINUTE. Please use WebSocket "
                                         "Streams for live updates to avoid polling the API.",
                                         429, retry_after="7")])
    write("binance_error_418.yaml", [err(-1003, "Way too much request weight used; IP banned "
                                         "until 1603732695742. Please use WebSocket Streams for "
                                         "live updates to avoid bans.", 418, retry_after="120")])
    write("binance_error_timestamp.yaml", [
        err(-1021, "Timestamp for this request is outside of the recvWindow."),
        interaction("GET", f"{API}/time", {"serverTime": info["serverTime"]})])
    write("binance_error_unknown_order.yaml", [
        err(-2011, "Unknown order sent.", method="DELETE",
            uri=f"{API}/order?symbol=LTCUSDT&origClientOrderId={CID}"),
        err(-2013, "Order does not exist.", method="GET",
            uri=f"{API}/order?symbol=LTCUSDT&origClientOrderId={CID}")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    build(parser.parse_args().shared)
