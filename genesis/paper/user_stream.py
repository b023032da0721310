"""The user data stream over Binance's WebSocket API (``/ws-api/v3``), as ccxt 4.5's
``watch_orders`` / ``watch_my_trades`` / ``watch_balance`` use it for spot:

* request ``{"id", "method": "userDataStream.subscribe.signature", "params": {"apiKey",
  "timestamp", ["recvWindow",] "signature"}}``, the signature being the hex HMAC-SHA256 of the
  other parameters sorted by name as ``k=v`` joined by ``&`` (checked like a signed REST
  request: key, timestamp window, signature); reply ``{"id", "status": 200, "result":
  {"subscriptionId": N}}``;
* then events ``{"subscriptionId": N, "event": {...}}``: an ``executionReport`` per order
  change (NEW, TRADE, CANCELED, EXPIRED) and an ``outboundAccountPosition`` with the balances
  of the assets involved after each batch;
* also ``userDataStream.unsubscribe``, ``ping`` and ``time``.

Errors: ``{"id", "status": <http>, "error": {"code", "msg"}}`` with the REST codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from genesis.paper import binance_json as bj
from genesis.paper import ws_json as wj
from genesis.paper.ws_conn import WsConnection

if TYPE_CHECKING:
    from genesis.paper.app import PaperApp


class UserDataStream:
    """Subscribers of the user data stream and the publishing of the exchange's order events."""

    def __init__(self, app: "PaperApp"):
        self.app = app
        self.subscriptions: dict[int, WsConnection] = {}
        self._next_id = 0

    def flush(self) -> None:
        """Publish the exchange's pending order events (call under the app lock)."""
        ex = self.app.exchange
        events, ex.outbox = ex.outbox, []
        if not events or not self.subscriptions:
            return
        assets: set[str] = set()
        payloads = []
        for e in events:
            inst = ex.instruments[e.order.symbol]
            assets.update((inst.base, inst.quote))
            payloads.append(wj.execution_report(e.order, bj.symbol_id(inst), e.execution_type,
                                                e.time_ms, e.trade, e.cancel_client_id))
        balances = [{"asset": a, "free": bj.fmt(ex.sim.free_balance(a)),
                     "locked": bj.fmt(total - ex.sim.free_balance(a))}
                    for a, total in sorted(ex.sim.balances().items()) if a in assets]
        payloads.append(wj.account_position(balances, events[-1].time_ms))
        for sid, conn in list(self.subscriptions.items()):
            for payload in payloads:
                conn.push({"subscriptionId": sid, "event": payload})

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws-api/v3``."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = WsConnection(ws, self.app.stream_faults, combined=False)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._request(conn, msg.data)
        finally:
            for sid in [s for s, c in self.subscriptions.items() if c is conn]:
                del self.subscriptions[sid]
            await conn.close()
        return ws

    async def _request(self, conn: WsConnection, text: str) -> None:
        rid: Any = None
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise bj.BinanceError(400, -1100, "Illegal characters found in a parameter.")
            rid, method = message.get("id"), message.get("method")
            params = message.get("params") or {}
            if not isinstance(params, dict):
                raise bj.BinanceError(400, -1100, "Illegal characters found in parameter 'params'.")
            result = await self._call(conn, method, {k: str(v) for k, v in params.items()})
        except ValueError:
            conn.reply({"id": rid, "status": 400, "error": {"code": -1100, "msg":
                        "Illegal characters found in a parameter."}})
            return
        except bj.BinanceError as exc:
            conn.reply({"id": rid, "status": exc.http_status, "error": exc.body()})
            return
        conn.reply({"id": rid, "status": 200, "result": result})

    async def _call(self, conn: WsConnection, method: Any, params: dict[str, str]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.app.wall_ms()}
        if method == "userDataStream.subscribe.signature":
            self._check_signature(params)
            async with self.app.lock:
                self.flush()  # events from before the subscription are not this client's
                sid, self._next_id = self._next_id, self._next_id + 1
                self.subscriptions[sid] = conn
            return {"subscriptionId": sid}
        if method == "userDataStream.unsubscribe":
            wanted = bj.parse_int(params, "subscriptionId")
            for sid in [s for s, c in self.subscriptions.items()
                        if c is conn and wanted in (None, s)]:
                del self.subscriptions[sid]
            return {}
        raise bj.BinanceError(400, -1100, f"Illegal characters found in parameter 'method'; "
                                          f"unknown method {method!r}.")

    def _check_signature(self, params: dict[str, str]) -> None:
        key = params.get("apiKey")
        if not key:
            raise bj.BinanceError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self.app.api_key):
            raise bj.BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        self.app.check_timestamp(params)
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac.new(self.app.api_secret.encode(), payload.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(params.get("signature", "").lower(), expected):
            raise bj.BinanceError(400, -1022, "Signature for this request is not valid.")
