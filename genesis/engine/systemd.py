"""sd_notify without a dependency: READY=1, STOPPING=1, WATCHDOG=1 on $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


class SystemdNotifier:
    def __init__(self, address: str | None = None):
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_seconds = int(usec) / 1_000_000 if usec and usec.isdigit() and int(usec) > 0 else None
        watchdog_pid = os.environ.get("WATCHDOG_PID")
        if watchdog_pid and watchdog_pid != str(os.getpid()):
            self.watchdog_seconds = None  # the watchdog is meant for another process (sd_watchdog_enabled)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, message: str, wait_seconds: float = 0.0) -> bool:
        """Send one datagram; False when not running under systemd, the socket is gone, or its
        queue is still full after ``wait_seconds`` (0: never block). The daemon calls this on
        its event loop, so a reader that stopped reading must not stall it."""
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(wait_seconds)
                sock.connect(addr)
                sock.sendall(message.encode("utf-8"))
            return True
        except OSError:
            return False
