"""Fault injection for the paper exchange, switchable at start and at runtime.

Per API request (admin endpoints excluded; with ``orders_only`` only ``POST``/``DELETE
/api/v3/order``), in this order:

1. ``p_418``: HTTP 418 IP ban (-1003, ``Retry-After``), nothing processed;
2. ``p_429``: HTTP 429 rate limit (-1003, ``Retry-After``), nothing processed;
3. ``p_5xx``: HTTP 503 without a JSON body, nothing processed;
3b. ``p_delay_order`` (``POST /api/v3/order`` only): HTTP 503 without a JSON body at once, but
   the order goes on: it reaches the matching engine ``delay_seconds`` (wall clock) later, where
   its ``timestamp`` is checked against its ``recvWindow`` again (as Binance does before it
   forwards a request), so the client's lookup may not find it yet and it may still execute;
4. the request is processed;
5. ``p_timeout_after_accept`` (``POST /api/v3/order`` only, when the order was accepted):
   the response is held for ``hold_seconds`` (longer than the client's timeout);
6. ``p_drop_response``: the connection is closed without a response.

``clock_skew_ms`` shifts the server's request clock (``/api/v3/time`` and the recvWindow check):
every signed request fails with -1021 until the client resynchronises its time offset.

Draws come from ``random.Random(seed)``; a probability of 0 draws nothing, so enabling one
fault does not shift another's sequence.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

PROBABILITIES = ("p_5xx", "p_timeout_after_accept", "p_429", "p_418", "p_drop_response", "p_delay_order")


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault probabilities (0..1) and their parameters."""

    p_5xx: float = 0.0
    p_timeout_after_accept: float = 0.0
    p_429: float = 0.0
    p_418: float = 0.0
    p_drop_response: float = 0.0
    p_delay_order: float = 0.0
    retry_after_seconds: int = 1
    hold_seconds: float = 30.0
    delay_seconds: float = 1.0
    clock_skew_ms: int = 0
    orders_only: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in PROBABILITIES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
        if not isinstance(self.retry_after_seconds, int) or self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must be an integer >= 0")
        if not self.hold_seconds >= 0:
            raise ValueError("hold_seconds must be >= 0")
        if not self.delay_seconds >= 0:
            raise ValueError("delay_seconds must be >= 0")
        if isinstance(self.clock_skew_ms, bool) or not isinstance(self.clock_skew_ms, int):
            raise ValueError("clock_skew_ms must be an integer (milliseconds)")

    def updated(self, changes: dict[str, Any]) -> Faults:
        """A copy with ``changes`` applied; unknown keys are refused (``ValueError``)."""
        return updated(self, changes, "fault")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``"p_5xx=0.1,p_429=0.05"`` (the CLI's ``--faults``)."""
        return cls().updated(parse_settings(cls, text))


def updated(settings: Any, changes: dict[str, Any], kind: str) -> Any:
    """A copy of the dataclass ``settings`` with ``changes``; unknown names refused."""
    known = {f.name for f in fields(settings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown {kind} setting(s): {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return replace(settings, **changes)


def parse_settings(cls: Any, text: str, kind_name: str = "fault") -> dict[str, Any]:
    """``"name=value,name=value"`` for the fields of the dataclass ``cls`` (bool, int, float)."""
    changes: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {part!r}")
        name = name.strip()
        kind = {f.name: f.type for f in fields(cls)}.get(name)
        if kind is None:
            raise ValueError(f"unknown {kind_name} setting {name!r}; known: "
                             f"{', '.join(f.name for f in fields(cls))}")
        try:
            changes[name] = (value.strip().lower() in ("1", "true", "yes") if kind == "bool"
                             else int(value) if kind == "int" else float(value))
        except ValueError:
            raise ValueError(f"{name} must be a{'n integer' if kind == 'int' else ' number'}, "
                             f"got {value.strip()!r}") from None
    return changes


class FaultInjector:
    """Draws the faults of one request from the current ``Faults``."""

    def __init__(self, faults: Faults | None = None):
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self.counts: dict[str, int] = {}

    def set(self, faults: Faults) -> None:
        if faults.seed != self.faults.seed:
            self._rng = random.Random(faults.seed)
        self.faults = faults

    def applies(self, method: str, path: str) -> bool:
        if path.startswith("/admin"):
            return False
        return not self.faults.orders_only or (path == "/api/v3/order" and method in ("POST", "DELETE"))

    def before(self) -> str | None:
        """"418", "429", "5xx" or None."""
        for name, p in (("418", self.faults.p_418), ("429", self.faults.p_429),
                        ("5xx", self.faults.p_5xx)):
            if self._draw(p):
                return self._count(name)
        return None

    def delay_order(self) -> bool:
        """Whether this new order reaches the matching engine late, its client told 503 now."""
        return self._draw(self.faults.p_delay_order) and bool(self._count("delay"))

    def hold_after_accept(self) -> bool:
        return self._draw(self.faults.p_timeout_after_accept) and bool(self._count("timeout"))

    def drop_response(self) -> bool:
        return self._draw(self.faults.p_drop_response) and bool(self._count("drop"))

    def _draw(self, p: float) -> bool:
        return p > 0 and self._rng.random() < p

    def _count(self, name: str) -> str:
        self.counts[name] = self.counts.get(name, 0) + 1
        return name


STREAM_PROBABILITIES = ("p_disconnect", "p_duplicate", "p_out_of_order")


@dataclass(frozen=True, slots=True)
class StreamFaults:
    """WebSocket faults (market streams and the user data stream), per message sent:

    * ``stall``: nothing is sent while it is on (the socket stays open and answers pings);
    * ``p_disconnect``: the connection is closed instead of sending the message;
    * ``p_duplicate``: the message is sent twice;
    * ``p_out_of_order``: the message is held back and sent after the next one.

    Replies to requests (``SUBSCRIBE``, ``userDataStream.subscribe.signature``) are never
    faulted; draws come from ``random.Random(seed)``."""

    p_disconnect: float = 0.0
    p_duplicate: float = 0.0
    p_out_of_order: float = 0.0
    stall: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in STREAM_PROBABILITIES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
        if not isinstance(self.stall, bool):
            raise ValueError("stall must be true or false")

    def updated(self, changes: dict[str, Any]) -> StreamFaults:
        """A copy with ``changes`` applied; unknown keys are refused (``ValueError``)."""
        return updated(self, changes, "stream fault")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> StreamFaults:
        """``"p_duplicate=0.1,stall=true"`` (the CLI's ``--stream-faults``)."""
        return cls().updated(parse_settings(cls, text, "stream fault"))


class StreamFaultInjector:
    """Decides, per outgoing stream message, what the stream faults do to it."""

    def __init__(self, faults: StreamFaults | None = None):
        self.faults = faults or StreamFaults()
        self._rng = random.Random(self.faults.seed)
        self.counts: dict[str, int] = {}

    def set(self, faults: StreamFaults) -> None:
        if faults.seed != self.faults.seed:
            self._rng = random.Random(faults.seed)
        self.faults = faults

    def decide(self) -> str | None:
        """"stall", "disconnect", "duplicate", "out_of_order" or None (send as is)."""
        f = self.faults
        if f.stall:
            return self._count("stall")
        for name, p in (("disconnect", f.p_disconnect), ("duplicate", f.p_duplicate),
                        ("out_of_order", f.p_out_of_order)):
            if p > 0 and self._rng.random() < p:
                return self._count(name)
        return None

    def _count(self, name: str) -> str:
        self.counts[name] = self.counts.get(name, 0) + 1
        return name
