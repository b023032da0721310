"""Signals that coalesce: a burst of them is one action, and none of them can hang the daemon.

asyncio's ``loop.add_signal_handler`` learns *which* signal arrived from a byte written to its
wakeup socket; in a burst that socket fills, the byte of a later SIGTERM is dropped (the stop is
lost) and every dropped byte prints a warning to stderr from signal context. Here the raw
handler (which may run between any two bytecodes of the main thread, even inside a logging call)
only records the signal in a dict and schedules one callback on the loop, once per burst; it
never logs and takes no lock. The callback gets every signal that arrived since the last one,
with the order of their last arrivals, so "SIGUSR1 then SIGUSR2" keeps the meaning of the last.
The wakeup fd (a socket of our own, written without warnings when full) only wakes the loop
when the signal lands in another thread; which signals arrived is read from the record.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

Handler = Callable[[dict[int, int]], None]


class SignalBridge:
    """Raw handlers for ``signals`` that call ``on_signals({signum: arrival order})`` on the loop,
    once per burst. ``install()`` from the loop's thread (the main thread); ``uninstall()``
    restores the previous handlers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, signals: Iterable[int], on_signals: Handler):
        self._loop, self._signals, self._on_signals = loop, tuple(signals), on_signals
        self._pending: dict[int, int] = {}
        self._order = itertools.count(1)
        self._scheduled = False
        self._previous: dict[int, Any] = {}
        self._previous_wakeup_fd = -1
        self._sockets: tuple[socket.socket, socket.socket] | None = None

    def install(self) -> None:
        read, write = socket.socketpair()
        read.setblocking(False)
        write.setblocking(False)
        self._sockets = (read, write)
        self._loop.add_reader(read.fileno(), self._drain)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._record)

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._sockets is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._loop.remove_reader(self._sockets[0].fileno())
            for sock in self._sockets:
                sock.close()
            self._sockets = None

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        # signal context: no logging, no locks, nothing that allocates a task
        self._pending[signum] = next(self._order)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._dispatch)
            except RuntimeError:  # the loop is closed: the daemon is already gone
                pass

    def _dispatch(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        if pending:
            self._on_signals(pending)

    def _drain(self) -> None:
        assert self._sockets is not None
        try:
            while self._sockets[0].recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
