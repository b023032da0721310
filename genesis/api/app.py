"""The HTTP API as an aiohttp application: ``build_app(deps, extra_routes)``.

Routes (``genesis/api/openapi.py`` is the contract): ``/healthz``, ``/readyz``,
``/v1/openapi.json``, ``/v1/executions`` (GET list, POST submit), ``/v1/executions/{id}``,
``/v1/executions/{id}/events``, ``POST /v1/executions/{id}/pause|resume|cancel|urgency`` and
``/v1/stream`` (SSE). Every ``/v1`` route but the OpenAPI document needs a bearer token; POST
needs the ``trader`` role. Every refusal is ``{"error", "field", "fix"}`` with its status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from genesis.api.access import TERMINAL, StoreAccess
from genesis.api.openapi import openapi_document
from genesis.api.stream import StreamHub
from genesis.api.submission import FIELDS, ApiError, parse_json, submission
from genesis.api.tokens import TokenBook
from genesis.bus import EventBus
from genesis.config import RuntimeConfig
from genesis.domain.instrument import Instrument
from genesis.requests import URGENCIES, RequestError

MAX_BODY_BYTES = 64 * 1024
MAX_LIST = 1000
PUBLIC_PATHS = ("/healthz", "/readyz", "/v1/openapi.json")
CONTROLS = ("pause", "resume", "cancel", "urgency")


@dataclass(frozen=True)
class ApiDeps:
    """The capabilities the API needs from whoever runs it (the daemon, a test)."""

    store: StoreAccess
    tokens: TokenBook
    instruments: Callable[[], Mapping[str, Instrument]]
    config: Callable[[], RuntimeConfig]
    ready: Callable[[], bool]  # /readyz: the daemon takes and settles commands
    bus: EventBus | None = None  # the live stream's source; None: /v1/stream answers 404
    inbox_written: Callable[[], None] = field(default=lambda: None)  # wake the command poller


HUB: web.AppKey[StreamHub] = web.AppKey("stream_hub", StreamHub)


def build_app(deps: ApiDeps, extra_routes: Sequence[web.RouteDef] = ()) -> web.Application:
    """The API application; ``extra_routes`` (``/metrics``, the dashboard's ``/``...) are
    mounted as they are, outside the token check of ``/v1``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors, _auth(deps.tokens)])
    api = _Handlers(deps)
    hub = StreamHub()
    app[HUB] = hub
    document = openapi_document(list(deps.instruments()))

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def stream(request: web.Request) -> web.StreamResponse:
        if deps.bus is None:
            raise ApiError(404, "no live stream here (the API runs without the daemon's event bus)")
        types = request.query.get("types")
        return await hub.serve(request, request.query.get("execution_id"),
                               frozenset(types.split(",")) if types else None)

    async def attach(_app: web.Application) -> None:
        if deps.bus is not None:
            hub.attach(deps.bus)

    async def close_streams(_app: web.Application) -> None:
        hub.close()

    async def close_store(_app: web.Application) -> None:
        deps.store.close()

    app.on_startup.append(attach)
    app.on_shutdown.append(close_streams)
    app.on_cleanup.append(close_store)
    given = {route.path for route in extra_routes if isinstance(route, web.RouteDef)}
    probes = [web.get(path, handler) for path, handler in (("/healthz", api.healthz), ("/readyz", api.readyz))
              if path not in given]  # a richer probe among extra_routes (genesis.observability) wins
    app.add_routes([
        *probes, web.get("/v1/openapi.json", openapi),
        web.get("/v1/executions", api.list_executions), web.post("/v1/executions", api.submit),
        web.get("/v1/executions/{id}", api.get_execution), web.get("/v1/executions/{id}/events", api.events),
        *[web.post(f"/v1/executions/{{id}}/{kind}", api.control(kind)) for kind in CONTROLS],
        web.get("/v1/stream", stream), *extra_routes])
    return app


class _Handlers:
    def __init__(self, deps: ApiDeps):
        self.deps = deps

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, _request: web.Request) -> web.Response:
        ready = self.deps.ready()
        return web.json_response({"ready": ready, "checks": {"commands": {"ok": ready, "detail": ""}}},
                                 status=200 if ready else 503)

    async def list_executions(self, request: web.Request) -> web.Response:
        limit = _int_query(request, "limit", 100, 1, MAX_LIST)
        rows = await self.deps.store.executions(request.query.get("state"), limit)
        return web.json_response({"executions": rows})

    async def get_execution(self, request: web.Request) -> web.Response:
        return web.json_response(await self._execution(request.match_info["id"]))

    async def events(self, request: web.Request) -> web.Response:
        execution_id = request.match_info["id"]
        after = _int_query(request, "after", 0, 0, 2**62)
        limit = _int_query(request, "limit", 1000, 1, 10_000)
        await self._execution(execution_id)
        rows = await self.deps.store.events(execution_id, after, limit)
        return web.json_response({"execution_id": execution_id, "events": rows})

    async def submit(self, request: web.Request) -> web.Response:
        req = submission(parse_json(await _body(request)), self.deps.instruments(), self.deps.config())
        try:
            execution_id, created = await self.deps.store.submit(req)
        except RequestError as exc:
            if exc.field == "account":  # no daemon holds it: the order would wait forever
                raise ApiError(422, str(exc), "account", FIELDS["account"][1]) from None
            raise ApiError(409, str(exc).replace("--id", "client_request_id").replace("id: ", "client_request_id: ", 1),
                           "client_request_id", "use a new client_request_id for a different order") from None
        if created:
            self.deps.inbox_written()
        return web.json_response(
            {"execution_id": execution_id, "client_request_id": req.request_id, "created": created,
             "state_url": f"/v1/executions/{execution_id}"},
            status=202 if created else 200, headers={"Location": f"/v1/executions/{execution_id}"})

    def control(self, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            execution_id = request.match_info["id"]
            raw = await _body(request)
            payload = None
            if kind == "urgency":
                payload = {"urgency": _urgency(parse_json(raw) if raw.strip() else None)}
            row = await self._execution(execution_id)
            if row["state"] in TERMINAL:
                raise ApiError(409, f"execution {execution_id} is {row['state']}; {kind} applies to a live execution",
                               "id", "see GET /v1/executions/{id}")
            try:
                command_id = await self.deps.store.control(kind, execution_id, payload)
            except RequestError as exc:
                raise ApiError(404, str(exc).split(": ", 1)[-1], "id", "see GET /v1/executions") from None
            self.deps.inbox_written()
            return web.json_response({"execution_id": execution_id, "requested": kind, "command_id": command_id,
                                      **(payload or {})}, status=202)
        return handler

    async def _execution(self, execution_id: str) -> dict[str, Any]:
        row = await self.deps.store.execution(execution_id) if len(execution_id) <= 64 else None
        if row is None:
            raise ApiError(404, f"no execution {execution_id[:64]!r}", "id", "see GET /v1/executions")
        return row


def _urgency(body: Any) -> str:
    level = body.get("urgency") if isinstance(body, dict) else None
    if level not in URGENCIES:
        raise ApiError(422 if isinstance(body, dict) else 400, f"urgency: {str(level)[:40]!r} is not an urgency",
                       "urgency", f'send {{"urgency": "high"}}; one of: {", ".join(URGENCIES)}')
    return str(level)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and low <= int(text) <= high):
        raise ApiError(400, f"{name}: {text[:40]!r} is not a whole number from {low} to {high}", name,
                       f"e.g. ?{name}={default}")
    return int(text)


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None


def _too_large() -> ApiError:
    return ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes", "body",
                    "send one order per request, or `genesis submit --file` for many")


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        challenge = {"WWW-Authenticate": 'Bearer realm="genesis"'} if exc.status == 401 else None
        return web.json_response(exc.body(), status=exc.status, headers=challenge)
    except web.HTTPException as exc:  # no route, wrong method...: the same JSON shape
        if exc.status < 400:
            raise
        fix = {404: "see /v1/openapi.json for the routes", 405: "see /v1/openapi.json for the methods"}.get(exc.status)
        return web.json_response({"error": exc.reason, "field": None, "fix": fix}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items() if k == "Allow"})


def _auth(tokens: TokenBook) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if not request.path.startswith("/v1/") or request.path in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        presented = header[7:].strip() if header[:7].lower() == "bearer " else None
        if presented is None and request.path == "/v1/stream":
            presented = request.query.get("access_token")  # browsers' EventSource cannot send headers
        if not presented:
            raise ApiError(401, "missing bearer token", "Authorization",
                           "send Authorization: Bearer <token> (tokens: <db>.tokens.json, `genesis token create`)")
        role = tokens.role_of(presented)
        if role is None:
            raise ApiError(401, "unknown token", "Authorization", "use a token from <db>.tokens.json")
        if request.method not in ("GET", "HEAD") and role != "trader":
            raise ApiError(403, f"a {role} token cannot {request.method}", "Authorization",
                           "use a trader token (`genesis token create --role trader`)")
        return await handler(request)
    return check
