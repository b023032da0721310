"""Small helpers for running the paper exchange locally (the demo, the chaos run, tests)."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a local URL and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URL)
        return json.loads(resp.read())


def ws_urls(base_url: str) -> dict[str, Any]:
    """The WebSocket URLs of a paper exchange at ``base_url`` (``http://127.0.0.1:8765``), in
    the shape of ccxt.pro binance's ``urls['api']['ws']`` entries for spot."""
    origin = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    return {"spot": origin + "/ws", "ws-api": {"spot": origin + "/ws-api/v3"}}


def point_ccxt_at(exchange: Any, base_url: str) -> None:
    """Point a ccxt (or ccxt.pro) ``binance`` client at a paper exchange: the REST URLs as
    ``--exchange-url`` does, and the spot WebSocket URLs (market streams and the WebSocket API
    of the user data stream)."""
    from genesis.venue.ccxt_support import override_urls

    ws = exchange.urls["api"].get("ws")
    override_urls(exchange, base_url)
    if isinstance(ws, dict):
        paper = ws_urls(base_url)
        exchange.urls["api"]["ws"] = {**ws, "spot": paper["spot"], "margin": paper["spot"],
                                      "ws-api": {**ws.get("ws-api", {}), **paper["ws-api"]}}
