"""structlog setup: JSON lines when stderr is not a terminal (journald), readable console
output when it is. Runners bind ``execution_id`` so every line of an execution carries it.

Every JSON line carries its syslog priority, ``PRIORITY`` (critical 2, error 3, warning 4,
info 6, debug 7). When stderr is the journal (systemd sets ``JOURNAL_STREAM`` to its device and
inode) each line also starts with ``<N>``, the prefix journald reads as the priority
(``SyslogLevelPrefix=``, on by default) and strips: ``journalctl -p err -u genesis`` then shows
errors and worse. Elsewhere the lines stay plain JSON.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

from genesis.venue.credentials import redact_secrets

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# syslog(3) priorities, as journald and `journalctl -p` number them
SYSLOG_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}


def add_syslog_priority(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``PRIORITY``: the syslog number of the line's level (after ``add_log_level``)."""
    event_dict["PRIORITY"] = SYSLOG_PRIORITY.get(event_dict.get("level", method_name), 6)
    return event_dict


class JsonLines:
    """JSON renderer; with ``level_prefix`` each line starts with ``<PRIORITY>`` for journald."""

    def __init__(self, level_prefix: bool):
        self._render = structlog.processors.JSONRenderer()
        self.level_prefix = level_prefix

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> str:
        line = self._render(logger, method_name, event_dict)
        return f"<{event_dict['PRIORITY']}>{line}" if self.level_prefix else line


def writes_to_journal(stream: Any) -> bool:
    """True when ``stream`` is the journal stream systemd connected (``JOURNAL_STREAM``)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return bool(expected) and expected == f"{st.st_dev}:{st.st_ino}"


def configure_logging(level: str = "info", json: bool | None = None, stream=None,  # type: ignore[no-untyped-def]
                      level_prefix: bool | None = None) -> None:
    """``json``: JSON lines (default: when ``stream`` is not a terminal). ``level_prefix``: the
    ``<N>`` priority prefix (default: when ``stream`` is the journal)."""
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
        prefix = writes_to_journal(stream) if level_prefix is None else level_prefix
        processors += [add_syslog_priority, structlog.processors.format_exc_info, JsonLines(prefix)]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
