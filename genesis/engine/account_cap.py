"""An account-wide participation cap per symbol (``risk.account_participation_cap``).

The participation cap of each parent bounds that parent alone: three hundred parents on one
symbol of one account, each at 10% of the volume traded, take far more than 10% together. With
the setting on, every capped leg (``SliceExecutor``) takes the lesser of its parent's allowance
and the account's room on the symbol:

    room = cap x volume traded in the current tape minute
           - the account's fills in that minute - quantity reserved by orders not yet final

One ledger (``SymbolLedger``) per account and symbol, shared by the runners of one supervisor
(built once, in ``genesis.runtime.wiring``; each slice executor sees only the narrow
``AccountRoom`` port). A leg reserves its quantity the moment it is granted (before its intent
is recorded: two parents cannot both spend the same room) and settles it when its order is final,
its fills counted in the minute each traded. The tape minute, not the slices' own intervals:
bounds on overlapping per-slice intervals do not add up to a bound on their sum, a bound per
fixed minute does.

A maker order resting across a minute boundary could fill in the next minute against room that
minute has not traded yet: with the setting on, a capped maker leg gives up at the minute's end
(``rest_until``), its remainder goes as taker under the next minute's room.

Limits (docs/configuration.md, ``risk.account_participation_cap``): the ledger is in-process, so
fills of another daemon on the same account, of orders placed by hand, and of a minute in which
the daemon restarted are not counted; it applies where the venue measures the volume actually
traded (``MeasuresTradedVolume``) and to capped slices (an emergency overrides it, as it does
the parent's cap), though every child order's fills count in the ledger.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Awaitable, Callable, Iterable, Protocol

import structlog

from genesis.clock import Clock
from genesis.domain.instrument import Instrument
from genesis.domain.orders import Fill
from genesis.engine.cap_room import next_look

ZERO = Decimal(0)
MINUTE = timedelta(minutes=1)
# the reason recorded on a slice's event when the account's room held part of it back
ACCOUNT_CAP_REASON = "account_participation_cap"
TradedVolume = Callable[[str, datetime, datetime], Awaitable[Decimal | None]]
log = structlog.get_logger("genesis.account_cap")


def minute_of(at: datetime) -> datetime:
    """The start of the tape minute ``at`` lies in."""
    return at.replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Room granted to one leg: ``qty`` (at most what it wanted), ``held_back`` when the
    account's room was short of what the leg wanted."""

    qty: Decimal
    held_back: bool = False
    key: int = 0  # 0: nothing reserved (no account cap)


class AccountRoom(Protocol):
    """The slice executor's port onto the account's room on its symbol."""

    async def reserve(self, wanted: Decimal, by: datetime) -> Reservation:
        """Grant up to ``wanted`` now, waiting until ``by`` at the latest for the room; the
        grant is reserved until ``settle``."""
        ...

    def settle(self, reservation: Reservation | None, fills: Iterable[Fill]) -> None:
        """An order is final: release its reservation (None: it had none) and count its fills."""
        ...

    def rest_until(self, deadline: datetime) -> datetime:
        """How long a capped maker order may rest: ``deadline``, or sooner (the minute's end)."""
        ...


class NoAccountCap:
    """The setting off: every leg is granted what it wants, nothing is counted."""

    async def reserve(self, wanted: Decimal, by: datetime) -> Reservation:
        return Reservation(wanted)

    def settle(self, reservation: Reservation | None, fills: Iterable[Fill]) -> None:
        return None

    def rest_until(self, deadline: datetime) -> datetime:
        return deadline


NO_ACCOUNT_CAP = NoAccountCap()


class SymbolLedger:
    """The account's fills on one symbol by time, and its reservations (see module docstring)."""

    def __init__(self, symbol: str, cap: Decimal, *, clock: Clock, instrument: Instrument,
                 traded_volume: TradedVolume, pace: Callable[[], Awaitable[None]]):
        self.symbol, self.cap, self.clock, self.instrument = symbol, cap, clock, instrument
        self.traded_volume, self.pace = traded_volume, pace
        self._fills: deque[tuple[datetime, Decimal, str]] = deque()  # (when it traded, qty, trade id), by time
        self._seen: set[str] = set()  # the trade ids in ``_fills``: a fill reported again counts once
        self._reserved: dict[int, tuple[datetime, Decimal]] = {}  # key -> (when granted, qty)
        self._keys = itertools.count(1)

    def filled_since(self, start: datetime) -> Decimal:
        """The account's counted fills on the symbol from ``start`` on."""
        return sum((q for at, q, _ in self._fills if at >= start), ZERO)

    def reserved(self, now: datetime) -> Decimal:
        """Quantity granted to orders not yet final. A reservation older than the previous
        minute is dropped: its order is long final (a maker leg rests within its minute, a
        taker fills at once), so it was never settled (its slice crashed or stopped)."""
        stale = minute_of(now) - MINUTE
        for key in [k for k, (at, _) in self._reserved.items() if at < stale]:
            del self._reserved[key]
        return sum((q for _, q in self._reserved.values()), ZERO)

    async def _traded(self, start: datetime, now: datetime) -> Decimal | None:
        try:
            return await self.traded_volume(self.symbol, start, now)
        except Exception as exc:  # unknown volume: no room (fail closed), looked at again
            log.warning("account_cap_volume_unknown", symbol=self.symbol, error=str(exc))
            return None

    def room(self, traded: Decimal | None, now: datetime) -> Decimal:
        """The account's room now, given the volume ``traded`` in the current minute so far."""
        if traded is None or traded <= 0:
            return ZERO
        return self.cap * traded - self.filled_since(minute_of(now)) - self.reserved(now)

    async def reserve(self, wanted: Decimal, by: datetime) -> Reservation:
        """See ``AccountRoom.reserve``: waits while the room is short of ``wanted``, looking
        again when the minute should have traded enough (or at its end, where the room renews)."""
        while True:
            now = self.clock.now()
            start = minute_of(now)
            traded = await self._traded(start, now)
            room = self.room(traded, now)  # no await between this and the reservation below
            if room >= wanted or now >= by or wanted <= 0:
                break
            needed = (self.filled_since(start) + self.reserved(now) + wanted) / self.cap
            await self.clock.sleep_until(min(by, start + MINUTE, next_look(start, now, traded, needed)))
            await self.pace()
        granted = max(ZERO, min(wanted, self.instrument.round_qty_down(room)))
        key = next(self._keys)
        self._reserved[key] = (now, granted)
        if granted < wanted:
            log.info("account_participation_cap_held_back", symbol=self.symbol, wanted=str(wanted),
                     granted=str(granted))
        return Reservation(granted, granted < wanted, key)

    def settle(self, reservation: Reservation | None, fills: Iterable[Fill]) -> None:
        """See ``AccountRoom.settle``. Idempotent on the reservation; a fill is counted once."""
        if reservation is not None:
            self._reserved.pop(reservation.key, None)
        for f in fills:
            self._count(f)
        horizon = minute_of(self.clock.now()) - MINUTE
        while self._fills and self._fills[0][0] < horizon:
            self._seen.discard(self._fills.popleft()[2])

    def _count(self, fill: Fill) -> None:
        if fill.trade_id in self._seen:
            return
        self._seen.add(fill.trade_id)
        self._fills.append((fill.timestamp, fill.qty, fill.trade_id))
        if len(self._fills) > 1 and self._fills[-2][0] > fill.timestamp:
            self._fills = deque(sorted(self._fills, key=lambda x: x[0]))

    def rest_until(self, deadline: datetime) -> datetime:
        """See ``AccountRoom.rest_until``: no later than the current minute's end."""
        return min(deadline, minute_of(self.clock.now()) + MINUTE)


class AccountCaps:
    """The ledgers of one engine, one per (account, symbol), built on first use."""

    def __init__(self, cap: Decimal | None, *, clock: Clock, traded_volume: TradedVolume | None,
                 pace: Callable[[], Awaitable[None]]):
        """``cap``: None (the setting off) or ``traded_volume`` None (the venue cannot measure
        it): every port is ``NO_ACCOUNT_CAP``."""
        self.cap, self.clock, self.traded_volume, self.pace = cap, clock, traded_volume, pace
        self._ledgers: dict[tuple[str, str], SymbolLedger] = {}

    def room(self, account: str, symbol: str, instrument: Instrument) -> AccountRoom:
        """The port onto ``account``'s room on ``symbol``."""
        if self.cap is None or self.traded_volume is None:
            return NO_ACCOUNT_CAP
        key = (account, symbol)
        if key not in self._ledgers:
            self._ledgers[key] = SymbolLedger(symbol, self.cap, clock=self.clock, instrument=instrument,
                                              traded_volume=self.traded_volume, pace=self.pace)
        return self._ledgers[key]
