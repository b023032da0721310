"""Order requests stamped on the exchange's request clock, and the fence before a re-send.

Binance spot takes a ``newClientOrderId`` again once the order that had it is filled, so a
second POST under the same id is NOT refused as a duplicate after a market, IOC or taker child
has filled. What bounds a request instead is its own time ("Timing security", rest-api.md):
every signed request carries ``timestamp`` and ``recvWindow``, and the exchange refuses it,
at receipt and again just before it forwards it to the matching engine, once
``serverTime - timestamp > recvWindow``. So a request stamped ``S`` can no longer become an
order after the exchange's time ``S + recvWindow``.

``SendStamps`` stamps each order request itself (``stamp``: the exchange's time now, as ccxt
reads it: the host clock less the measured ``timeDifference``), remembers the latest stamp per
client order id, and ``settle`` returns once the exchange's time is past
``stamp + recv_window + clock_margin`` (the margin: the error of the measured time difference).
After that, an order the venue does not show under the id never will exist, and only then may
the same id be sent again (``genesis.engine.venue_calls``). A process that must not send any
more (its account lease has lapsed, by its own conservative view: ``may_send``) stamps nothing:
the stamp is read first, the lease checked after, so a request stamped while the lease was held
is refused by the exchange past ``lease expiry + recv_window`` however long the process was
paused before sending it (``genesis.engine.recovery`` waits that long before a re-send).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable

from genesis.venue.base import RetryableVenueError

MAX_RECV_WINDOW_MS = 60_000  # Binance's limit


class LeaseLapsed(RetryableVenueError):
    """Not sent: this process no longer holds its account lease (by its own view)."""


@dataclass(frozen=True, slots=True)
class SendWindow:
    """``recv_window_ms``: the ``recvWindow`` every order request carries (1..60000);
    ``clock_margin_ms``: how far the host's reading of the exchange's clock may be off (ccxt's
    measured time difference; two hosts' readings after a failover)."""

    recv_window_ms: int = 5_000
    clock_margin_ms: int = 1_000

    def __post_init__(self) -> None:
        if not 1 <= self.recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"ccxt.recv_window_ms must be between 1 and {MAX_RECV_WINDOW_MS} "
                             f"(milliseconds), got {self.recv_window_ms}")
        if not 0 <= self.clock_margin_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"ccxt.resend_clock_margin_ms must be between 0 and {MAX_RECV_WINDOW_MS} "
                             f"(milliseconds), got {self.clock_margin_ms}")

    def settled_after_ms(self, stamp_ms: int) -> int:
        """The exchange's time after which a request stamped ``stamp_ms`` cannot become an order."""
        return stamp_ms + self.recv_window_ms + self.clock_margin_ms


class SendStamps:
    """The stamps of one venue's order requests (see the module docstring). ``now_ms``: the
    exchange's request clock as read here (ccxt ``nonce``); ``may_send``: whether this process
    may still send (its lease), None when nothing is fenced; ``sleep``: waits seconds on the
    host's clock (the request clock runs with it)."""

    def __init__(self, window: SendWindow, now_ms: Callable[[], int],
                 may_send: Callable[[], bool] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.window, self._now_ms, self.may_send, self._sleep = window, now_ms, may_send, sleep
        self._last: dict[str, int] = {}  # client order id -> its latest stamp

    def now_ms(self) -> int:
        """The exchange's request clock now (milliseconds since the epoch)."""
        return int(self._now_ms())

    def stamp(self, client_order_id: str) -> int:
        """The ``timestamp`` of a request sending ``client_order_id`` now, remembered for
        ``settle``. ``LeaseLapsed`` (nothing stamped) when this process may no longer send."""
        stamp = self.now_ms()  # first: a pause after the check below only makes it older
        self.check_may_send()
        self._forget_settled(stamp)
        self._last[client_order_id] = max(stamp, self._last.pop(client_order_id, stamp))
        return stamp

    def check_may_send(self) -> None:
        """``LeaseLapsed`` when this process may no longer send."""
        if self.may_send is not None and not self.may_send():
            raise LeaseLapsed("the account lease is no longer held: the order was not sent")

    def settled_after_ms(self, client_order_id: str, sent_by_ms: int | None = None) -> int | None:
        """The exchange's time after which no request under ``client_order_id`` (stamped here,
        or by another process no later than ``sent_by_ms``) can become an order; None when
        none is known."""
        stamps = [s for s in (self._last.get(client_order_id), sent_by_ms) if s is not None]
        return self.window.settled_after_ms(max(stamps)) if stamps else None

    async def settle(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        """Return once the exchange's time is past ``settled_after_ms`` (at once when none)."""
        until = self.settled_after_ms(client_order_id, sent_by_ms)
        while until is not None and (left := until - self.now_ms()) >= 0:
            await self._sleep((left + 1) / 1000)

    def _forget_settled(self, now_ms: int) -> None:
        """Drop stamps whose requests can no longer be accepted (oldest first)."""
        while self._last:
            cid, stamp = next(iter(self._last.items()))
            if self.window.settled_after_ms(stamp) >= now_ms:
                return
            del self._last[cid]
