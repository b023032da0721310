"""Small helpers for running the paper exchange locally (the demo, the chaos run, tests)."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

from genesis.venue.ccxt_support import point_ccxt_at, ws_urls  # noqa: F401 (the paper tools' names)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a local URL and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URL)
        return json.loads(resp.read())
