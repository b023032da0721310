"""aiohttp route definitions for ``/metrics``, ``/healthz`` and ``/readyz``, to mount on any
``aiohttp.web.Application`` (the API's ``build_app(extra_routes=...)``, or ``app.add_routes``)."""

from __future__ import annotations

from typing import Callable, Mapping

from aiohttp import web

from genesis.observability.health import ReadinessCheck, healthz, readiness
from genesis.observability.metrics import MetricsCollector


def metrics_route(collector: MetricsCollector, path: str = "/metrics") -> web.RouteDef:
    """``GET /metrics``: the Prometheus text exposition (executions by state read at each scrape)."""

    async def handler(request: web.Request) -> web.Response:
        await collector.refresh()
        body, content_type = collector.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return web.get(path, handler)


def healthz_route(path: str = "/healthz") -> web.RouteDef:
    """``GET /healthz``: 200 while the process answers."""

    async def handler(request: web.Request) -> web.Response:
        _ok, details = healthz()
        return web.json_response(details)

    return web.get(path, handler)


def readyz_route(checks: Mapping[str, ReadinessCheck] | Callable[[], Mapping[str, ReadinessCheck]],
                 path: str = "/readyz") -> web.RouteDef:
    """``GET /readyz``: 200 when every check passes, else 503; the body names each check."""

    async def handler(request: web.Request) -> web.Response:
        current = checks() if callable(checks) else checks
        ok, details = await readiness(current)
        return web.json_response({"ready": ok, "checks": details}, status=200 if ok else 503)

    return web.get(path, handler)
