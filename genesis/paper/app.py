"""The paper exchange's aiohttp application: its state (exchange, credentials, faults, rate
limits, wall clock), Binance's request signing and the fault-injecting middleware. The
endpoints (``routes``) and streams (``streams``, ``user_stream``) type against it;
``genesis.paper.server.build_app`` puts them together.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from genesis.paper import binance_json as bj
from genesis.paper.exchange import PaperExchange
from genesis.paper.faults import FaultInjector, Faults, StreamFaultInjector, StreamFaults
from genesis.paper.limits import Limits, RateLimiter, request_weight

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
AHEAD_TOLERANCE_MS = 1_000
Handler = Callable[["Ctx"], Awaitable[Any]]
# per-request storage key (aiohttp >= 3.12 wants typed keys; plain strings elsewhere)
CLIENT_ORDER_ID: Any = (web.RequestKey("client_order_id", str) if hasattr(web, "RequestKey")
                        else "client_order_id")


@dataclass(slots=True)
class Ctx:
    """One API request as the route functions see it."""

    request: web.Request
    params: dict[str, str]
    exchange: PaperExchange
    app: "PaperApp"


class PaperApp:
    """The aiohttp application and its state (exchange, credentials, faults, rate limits, wall
    clock); ``genesis.paper.server.build_app`` adds the endpoints and the streams."""

    def __init__(self, exchange: PaperExchange, api_key: str, api_secret: str,
                 faults: Faults | None = None, wall_ms: Callable[[], int] | None = None,
                 speed: float | None = None, limits: Limits | None = None,
                 stream_faults: StreamFaults | None = None):
        self.exchange, self.api_key, self.api_secret = exchange, api_key, api_secret
        self.faults = FaultInjector(faults)
        self.stream_faults = StreamFaultInjector(stream_faults)
        self.limiter = RateLimiter(limits, speed or 1.0)
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.speed = speed
        self.lock = asyncio.Lock()
        self.delayed: set[asyncio.Task[None]] = set()  # orders on their way (the p_delay_order fault)
        self.web = web.Application(middlewares=[self._middleware])
        # the market and user-data streams (genesis.paper.streams, .user_stream): built on this
        # app by genesis.paper.server.build_app, with the endpoints
        self.streams: Any = None
        self.user: Any = None

    def wall_ms(self) -> int:
        """The server's request clock (``/time``, recvWindow checks), shifted by the
        ``clock_skew_ms`` fault."""
        return self._wall_ms() + self.faults.faults.clock_skew_ms

    def api(self, method: str, path: str, handler: Handler, signed: bool = False) -> None:
        """Register one Binance endpoint."""
        async def wrapped(request: web.Request) -> web.StreamResponse:
            params = dict(parse_qsl(request.query_string, keep_blank_values=True))
            body = bj.body_text(await request.read()) if request.body_exists else ""
            params.update(parse_qsl(body, keep_blank_values=True))
            if signed:
                self._check_signature(request, params, body)
            ctx = Ctx(request, params, self.exchange, self)
            async with self.lock:
                if signed:  # again just before matching: a request held up on the way is refused
                    self.check_timestamp(params)
                try:
                    result = await handler(ctx)
                finally:
                    self.user.flush()
            return web.json_response(result)
        self.web.router.add_route(method, path, wrapped)

    def _check_signature(self, request: web.Request, params: dict[str, str], body: str) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise bj.BinanceError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self.api_key):
            raise bj.BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        self.check_timestamp(params)
        query = request.query_string
        total = query + body  # Binance signs the query string followed by the body
        signature = params.get("signature", "")
        payload = total.replace(f"&signature={signature}", "").replace(f"signature={signature}", "")
        expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise bj.BinanceError(400, -1022, "Signature for this request is not valid.")

    def check_timestamp(self, params: dict[str, str]) -> None:
        """``timestamp`` / ``recvWindow`` of a signed request against the request clock."""
        stamp = bj.parse_int(params, "timestamp")
        if stamp is None:
            raise bj.mandatory("timestamp")
        window = bj.parse_int(params, "recvWindow", DEFAULT_RECV_WINDOW_MS)
        assert window is not None
        if window > MAX_RECV_WINDOW_MS:
            raise bj.BinanceError(400, -1131, "recvWindow must be less than 60000")
        now = self.wall_ms()
        if stamp > now + AHEAD_TOLERANCE_MS:
            raise bj.BinanceError(400, -1021, "Timestamp for this request was 1000ms ahead of the "
                                              "server's time.")
        if now - stamp > window:
            raise bj.BinanceError(400, -1021, "Timestamp for this request is outside of the "
                                              "recvWindow.")

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path, method = request.path, request.method
        if path.startswith(("/ws", "/stream")):  # WebSockets: stream faults, not REST ones
            return await handler(request)
        # lenient here, only to name the order in the audit; the endpoint refuses a non-UTF-8 body
        body = (await request.read()).decode("utf-8", "replace") if request.body_exists else ""
        sent = dict(parse_qsl(request.query_string + "&" + body))
        request[CLIENT_ORDER_ID] = sent.get("origClientOrderId") or sent.get("newClientOrderId")
        injector = self.faults
        fault = injector.before() if injector.applies(method, path) else None
        limit_headers: dict[str, str] = {}
        try:
            if path.startswith("/api/v3"):
                limit_headers = self._charge_limits(request, sent)
            if fault == "418":
                ban_ms = self.wall_ms() + injector.faults.retry_after_seconds * 1000
                raise bj.ip_banned(ban_ms, injector.faults.retry_after_seconds)
            if fault == "429":
                raise bj.too_many_requests(injector.faults.retry_after_seconds)
            if fault == "5xx":
                self._audit(request, 503, None, fault)
                return web.Response(status=503, text="Service Unavailable", headers=limit_headers)
            if path == "/api/v3/order" and method == "POST" and injector.applies(method, path) and (
                    injector.delay_order()):
                self._audit(request, 503, None, "delay_order")
                task = asyncio.create_task(self._process_later(request, handler, injector.faults.delay_seconds))
                self.delayed.add(task)
                task.add_done_callback(self.delayed.discard)
                return web.Response(status=503, text="Service Unavailable", headers=limit_headers)
            response = await handler(request)
        except bj.BinanceError as exc:
            self._audit(request, exc.http_status, exc.code, fault)
            return web.json_response(exc.body(), status=exc.http_status,
                                     headers={**limit_headers, **exc.headers})
        except web.HTTPException as exc:
            if not path.startswith("/admin"):
                self._audit(request, exc.status, None, fault)
            raise
        if path.startswith("/admin") or not path.startswith("/api"):
            return response
        response.headers.update(limit_headers)
        if (path == "/api/v3/order" and method == "POST" and injector.applies(method, path)
                and injector.hold_after_accept()):
            self._audit(request, response.status, None, "timeout_after_accept")
            await asyncio.sleep(injector.faults.hold_seconds)
            return response
        if injector.applies(method, path) and injector.drop_response():
            self._audit(request, response.status, None, "drop_response")
            if request.transport is not None:
                request.transport.close()
            return response
        self._audit(request, response.status, None, None)
        return response

    async def _process_later(self, request: web.Request, handler: Any, delay_seconds: float) -> None:
        """A new order whose client was told 503: it reaches the matching engine now (audited
        as ``delayed``, with the exchange's answer, a -1021 when its recvWindow has passed)."""
        await asyncio.sleep(delay_seconds)
        try:
            response = await handler(request)
        except bj.BinanceError as exc:
            self._audit(request, exc.http_status, exc.code, "delayed")
        else:
            self._audit(request, response.status, None, "delayed")

    async def settle_delayed(self) -> None:
        """Until every delayed order has reached the matching engine (tests)."""
        while self.delayed:
            await asyncio.gather(*self.delayed)

    def _charge_limits(self, request: web.Request, sent: dict[str, str]) -> dict[str, str]:
        """Request weight for the caller's IP, and the order count of a new order."""
        sim_ms = self.exchange.now_ms()
        weight = request_weight(request.method, request.path, sent)
        headers = self.limiter.charge(request.remote or "", weight, sim_ms, self.wall_ms())
        if request.path == "/api/v3/order" and request.method == "POST":
            account = request.headers.get("X-MBX-APIKEY", "")
            try:
                headers.update(self.limiter.count_order(account, sim_ms))
            except bj.BinanceError as exc:
                exc.headers.update(headers)
                raise
        return headers

    def _audit(self, request: web.Request, status: int, code: int | None, fault: str | None) -> None:
        if request.path.startswith("/admin") or request.path in ("/api/v3/ping", "/api/v3/time"):
            return
        cid = request.get(CLIENT_ORDER_ID)
        with self.exchange.store.transaction():
            self.exchange.store.log_request(self.wall_ms(), self.exchange.now_ms(), request.method,
                                            request.path, cid, status, code, fault)
