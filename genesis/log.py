"""structlog setup: JSON lines when stderr is not a terminal (journald), readable console
output when it is. Runners bind ``execution_id`` so every line of an execution carries it."""

from __future__ import annotations

import logging
import sys

import structlog

from genesis.venue.credentials import redact_secrets

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", json: bool | None = None, stream=None) -> None:  # type: ignore[no-untyped-def]
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,  # API keys, secrets and request signatures never reach a log line
    ]
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
