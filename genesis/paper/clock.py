"""The daemon's clock when it trades on a paper exchange: the exchange's simulated time.

``GET <url>/admin/clock`` answers ``{"now_ms", "speed"}`` on a paper exchange and 404 on a real
one. ``exchange_clock`` turns that into a ``ScaledClock`` running at the same speed from the
same instant (half the round trip added), or a ``WallClock`` for a real exchange.
"""

from __future__ import annotations

import time
from datetime import timedelta

import aiohttp

from genesis.clock import Clock, ScaledClock, WallClock
from genesis.venue.candles import from_epoch_ms


class ExchangeUnreachable(Exception):
    """The exchange URL did not answer."""


async def exchange_clock(url: str | None, timeout_seconds: float = 5.0) -> Clock:
    """``ScaledClock`` aligned to a paper exchange at ``url``; ``WallClock`` otherwise."""
    if not url:
        return WallClock()
    probe = url.rstrip("/") + "/admin/clock"
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as s:
            async with s.get(probe) as resp:
                if resp.status == 404:
                    return WallClock()
                resp.raise_for_status()
                body = await resp.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ExchangeUnreachable(f"cannot reach the exchange at {url}: {exc}") from None
    half_trip = (time.monotonic() - started) / 2
    speed = float(body.get("speed") or 1.0)
    now = from_epoch_ms(int(body["now_ms"]))
    return ScaledClock(now + timedelta(seconds=half_trip * speed), speed)
