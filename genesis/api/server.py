"""Serving the API: ``genesis run --http HOST:PORT`` starts it in the daemon (``serve_api``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import structlog
from aiohttp import web

from genesis.api.access import StoreAccess
from genesis.api.address import parse_http_address
from genesis.api.app import ApiDeps, build_app
from genesis.api.tokens import (TokenBook, TokenFileError, TokenFileMissing, ensure_token_file, load_tokens,
                                token_path)
from genesis.domain.instrument import Instrument

log = structlog.get_logger("genesis.api")


class ApiSetupError(Exception):
    """The API cannot start (bad address, port taken, unusable token file)."""


class ApiServer:
    """An aiohttp site for ``app`` on ``host:port``."""

    def __init__(self, app: web.Application, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)

    async def start(self) -> None:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ApiSetupError(f"--http {self.host}:{self.port}: cannot listen: {exc.strerror}") from None

    async def stop(self) -> None:
        await self._runner.cleanup()


def prepare_tokens(path: Path) -> TokenBook:
    """The token file ``path``, created with one trader and one read token when missing, checked."""
    created = ensure_token_file(path)
    if created:
        log.info("api_tokens_created", path=str(path), roles=[t.role for t in created])
    try:
        load_tokens(path)
    except TokenFileError as exc:
        raise ApiSetupError(str(exc)) from None
    return TokenBook(path)


async def serve_api(daemon: Any, address: str, instruments: Mapping[str, Instrument],
                    extra_routes: Sequence[web.RouteDef] = (), tokens_path: Path | None = None) -> ApiServer:
    """Start the API for a starting ``Daemon`` (its store and bus live, its venue's
    ``instruments`` loaded); ``/readyz`` says when it takes commands. ``tokens_path``: the
    token file (``token_path``: by default beside a SQLite database)."""
    try:
        host, port = parse_http_address(address)
    except ValueError as exc:
        raise ApiSetupError(f"--http {exc}") from None
    db_path = daemon.options.db_path
    try:
        tokens_path = token_path(db_path, tokens_path)
    except TokenFileMissing as exc:
        raise ApiSetupError(str(exc)) from None
    routes = [*_observability_routes(daemon), *extra_routes]
    deps = ApiDeps(
        store=StoreAccess(db_path), tokens=prepare_tokens(tokens_path),
        instruments=lambda: instruments, config=lambda: daemon.config,
        ready=lambda: daemon.ready and not daemon.stop_event.is_set(), bus=daemon.bus, inbox_written=daemon.wake_command_poller)
    server = ApiServer(build_app(deps, routes), host, port)
    await server.start()
    log.info("api_listening", address=f"http://{host}:{port}", tokens=str(tokens_path))
    return server


def _observability_routes(daemon: Any) -> list[web.RouteDef]:
    """``/metrics``, ``/healthz`` and ``/readyz`` from genesis.observability; its readiness
    checks gain ``commands``: executions recovered, the command inbox served."""
    from genesis.observability.http import healthz_route, metrics_route, readyz_route

    obs = daemon.observability

    def commands() -> tuple[bool, str]:
        if daemon.stop_event.is_set():
            return False, "the daemon is stopping"
        return (True, "taking commands") if daemon.ready else (False, "recovering executions")

    obs.readiness_checks["commands"] = commands
    return [metrics_route(obs.metrics), healthz_route(), readyz_route(lambda: obs.readiness_checks)]
