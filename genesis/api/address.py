"""``--http`` addresses (standard library only: the CLI checks them before starting anything)."""

from __future__ import annotations

import ipaddress

DEFAULT_HOST = "127.0.0.1"


def parse_http_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:8780``, ``[::1]:8780``, ``:8780`` or ``8780`` (host 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_HOST
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: the port must be 1-65535, e.g. 127.0.0.1:8780")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IP address; use e.g. 127.0.0.1:8780") from None
    return host, int(port)
