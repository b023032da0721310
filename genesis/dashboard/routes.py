"""The dashboard's routes, mounted by the daemon beside the API (``build_app(deps, extra_routes)``).

* ``GET /`` and ``GET /dashboard/<file>``: the page and its script and style sheet, read from
  the package (``genesis/dashboard/static``), with a Content-Security-Policy that allows
  nothing but this origin (no inline script, nothing from the network). The page holds no
  token: it asks for one and keeps it in the tab's ``sessionStorage``.
* ``GET /v1/executions/{id}/market``: the chart's data (``market.market_view``).
* ``GET /v1/whoami``: ``{"role": "read" | "trader"}`` of the token presented, so the page
  shows the control buttons only to a trader.

The two ``/v1`` routes sit behind the API's token check like every other ``/v1`` route.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import URL

from genesis.api.submission import ApiError
from genesis.api.tokens import TokenBook
from genesis.dashboard.market import load_market_view

STATIC_FILES = {  # served name -> content type; nothing else under /dashboard/ is served
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MAX_ID_LENGTH = 64


def static_file(name: str) -> bytes:
    """A file of the page, from the installed package (``[tool.setuptools.package-data]``)."""
    return resources.files("genesis.dashboard").joinpath("static", name).read_bytes()


def dashboard_routes(db_path: str | Path | URL, tokens_path: str | Path) -> list[web.RouteDef]:
    """The routes to hand to ``build_app`` for the database ``db_path`` (a SQLite file or a
    PostgreSQL URL) whose API tokens are in ``tokens_path``."""
    tokens = TokenBook(tokens_path)

    def serve(name: str) -> web.Response:
        return web.Response(body=static_file(name), headers={"Content-Type": STATIC_FILES[name], **SECURITY_HEADERS})

    async def index(_request: web.Request) -> web.Response:
        return serve("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES or name == "index.html":
            raise ApiError(404, f"no dashboard file {name[:64]!r}", None, "open / for the dashboard")
        return serve(name)

    async def market(request: web.Request) -> web.Response:
        execution_id = request.match_info["id"]
        view = (await asyncio.to_thread(load_market_view, db_path, execution_id)
                if len(execution_id) <= MAX_ID_LENGTH else None)
        if view is None:
            raise ApiError(404, f"no started execution {execution_id[:64]!r}", "id", "see GET /v1/executions")
        return web.json_response(view)

    async def whoami(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return web.json_response({"role": tokens.role_of(presented)})

    return [web.get("/", index), web.get("/dashboard/{name}", asset),
            web.get("/v1/executions/{id}/market", market), web.get("/v1/whoami", whoami)]
