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

**After a restart or a failover** a ledger starts from the fills the store recorded for the
account's executions on the symbol since the previous minute began (``RecordedFills``, read once,
at its first capped leg), so the minute the daemon restarted in is not counted as empty. **On
SIGHUP** (``AccountCaps.adopt``) a new cap applies to every leg from then on, running executions
included; the ledgers count fills whether the cap is on or off, so turning it on mid-minute
counts that minute's fills.

Limits (docs/configuration.md, ``risk.account_participation_cap``): fills of orders placed by
hand on the account are not counted (another daemon cannot trade the account: an account is
worked by the one daemon holding its lease); it applies where the venue measures the volume
actually traded (``MeasuresTradedVolume``) and to capped slices (an emergency overrides it, as
it does the parent's cap), though every child order's fills count in the ledger.
"""

from __future__ import annotations

import asyncio
import itertools
from bisect import bisect_right
from collections import deque
from operator import itemgetter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Awaitable, Callable, Iterable, Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from genesis.clock import Clock
from genesis.domain.instrument import Instrument
from genesis.domain.orders import Fill
from genesis.engine.cap_room import next_look
from genesis.engine.venue_calls import RetryPolicy
from genesis.store.errors import StorageError

ZERO = Decimal(0)
MINUTE = timedelta(minutes=1)
# the reason recorded on a slice's event when the account's room held part of it back
ACCOUNT_CAP_REASON = "account_participation_cap"
_traded_at = itemgetter(0)  # a counted fill's time (``SymbolLedger._fills``)
TradedVolume = Callable[[str, datetime, datetime], Awaitable[Decimal | None]]
# the fills the store recorded for (account, symbol) from a time on: (when traded, qty, trade id)
RecordedFills = Callable[[str, str, datetime], Awaitable[list[tuple[datetime, Decimal, str]]]]
log = structlog.get_logger("genesis.account_cap")
# what a failed read of the recorded fills raises (the database unreachable or refusing)
STORE_ERRORS = (SQLAlchemyError, StorageError, OSError)
# back-off between failed reads of the recorded fills: 1 s doubling up to 30 s
SEED_RETRY = RetryPolicy(base_seconds=1.0, max_seconds=30.0)


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

    def __init__(self, symbol: str, cap: Decimal | None, *, clock: Clock, instrument: Instrument,
                 traded_volume: TradedVolume, pace: Callable[[], Awaitable[None]],
                 recorded_fills: Callable[[datetime], Awaitable[list[tuple[datetime, Decimal, str]]]] | None = None):
        """``cap`` None: off (legs get what they want; fills are still counted, for a cap
        turned on later). ``recorded_fills``: the store's fills of this account and symbol from
        a time on, read once at the first capped leg (a restart's or failover's minute)."""
        self.symbol, self.cap, self.clock, self.instrument = symbol, cap, clock, instrument
        self.traded_volume, self.pace, self._recorded_fills = traded_volume, pace, recorded_fills
        self._seeding: asyncio.Future[None] | None = None  # the one read of the recorded fills
        self._seed_failures = 0  # reads of the recorded fills the store failed, in a row
        self._seed_retry_at = datetime.min.replace(tzinfo=timezone.utc)  # no read before then
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
        if self.cap is None:
            raise ValueError("no room without a cap: the account cap is off")
        if traded is None or traded <= 0:
            return ZERO
        return self.cap * traded - self.filled_since(minute_of(now)) - self.reserved(now)

    async def reserve(self, wanted: Decimal, by: datetime) -> Reservation:
        """See ``AccountRoom.reserve``: waits while the room is short of ``wanted``, looking
        again when the minute should have traded enough (or at its end, where the room renews)."""
        if self.cap is None:
            return Reservation(wanted)
        while True:
            seeded = await self._seeded()
            now = self.clock.now()
            start = minute_of(now)
            # the recorded fills unread (the store failed): no room (fail closed), looked at again
            traded = await self._traded(start, now) if seeded else None
            cap = self.cap
            if cap is None:  # turned off (SIGHUP) while this leg waited
                return Reservation(wanted)
            room = self.room(traded, now)  # no await between this and the reservation below
            if room >= wanted or now >= by or wanted <= 0:
                break
            needed = (self.filled_since(start) + self.reserved(now) + wanted) / cap
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

    async def _seeded(self) -> bool:
        """Whether the store's fills since the previous minute began are counted: read once,
        every leg waiting for the one read (legs of a restart start together); a fill already
        counted by ``settle`` counts once. A read the store failed is tried again at a later
        look, no sooner than its back-off (``SEED_RETRY``: 1 s doubling up to
        30 s); until then the ledger has no room (fail closed)."""
        if self._recorded_fills is None:
            return True
        if self._seeding is None or (self._seeding.done() and self.clock.now() >= self._seed_retry_at):
            self._seeding = asyncio.create_task(self._seed(), name=f"account-cap-seed-{self.symbol}")
        await asyncio.shield(self._seeding)
        return self._recorded_fills is None

    async def _seed(self) -> None:
        assert self._recorded_fills is not None
        try:
            rows = await self._recorded_fills(minute_of(self.clock.now()) - MINUTE)
        except STORE_ERRORS as exc:
            self._seed_failures += 1
            delay = timedelta(seconds=SEED_RETRY.delay(self._seed_failures - 1))
            self._seed_retry_at = self.clock.now() + delay
            log.warning("account_cap_recorded_fills_unread", symbol=self.symbol, error=str(exc),
                        failures=self._seed_failures, retry_in_seconds=delay.total_seconds())
            return
        for at, qty, trade_id in rows:
            self._count_one(at, qty, trade_id)
        self._recorded_fills = None  # read: never again

    def _count(self, fill: Fill) -> None:
        self._count_one(fill.timestamp, fill.qty, fill.trade_id)

    def _count_one(self, at: datetime, qty: Decimal, trade_id: str) -> None:
        if trade_id in self._seen:
            return
        self._seen.add(trade_id)
        if not self._fills or self._fills[-1][0] <= at:
            self._fills.append((at, qty, trade_id))
        else:  # reported out of time order (fills of many orders): put in place, after the same time's
            self._fills.insert(bisect_right(self._fills, at, key=_traded_at), (at, qty, trade_id))

    def rest_until(self, deadline: datetime) -> datetime:
        """See ``AccountRoom.rest_until``: no later than the current minute's end (cap on)."""
        if self.cap is None:
            return deadline
        return min(deadline, minute_of(self.clock.now()) + MINUTE)


class AccountCaps:
    """The ledgers of one engine, one per (account, symbol), built on first use."""

    def __init__(self, cap: Decimal | None, *, clock: Clock, traded_volume: TradedVolume | None,
                 pace: Callable[[], Awaitable[None]], recorded_fills: RecordedFills | None = None):
        """``cap``: None (the setting off: legs get what they want, fills are still counted).
        ``traded_volume`` None (the venue cannot measure it): every port is ``NO_ACCOUNT_CAP``.
        ``recorded_fills``: the store's fills, which a new ledger starts from (None: empty)."""
        self.cap, self.clock, self.traded_volume, self.pace = cap, clock, traded_volume, pace
        self.recorded_fills = recorded_fills
        self._ledgers: dict[tuple[str, str], SymbolLedger] = {}

    def adopt(self, cap: Decimal | None) -> None:
        """A new cap (SIGHUP) for every leg from now on, on every ledger (their fills kept)."""
        self.cap = cap
        for ledger in self._ledgers.values():
            ledger.cap = cap

    def room(self, account: str, symbol: str, instrument: Instrument) -> AccountRoom:
        """The port onto ``account``'s room on ``symbol``."""
        if self.traded_volume is None:
            return NO_ACCOUNT_CAP
        key = (account, symbol)
        if key not in self._ledgers:
            recorded = self.recorded_fills
            seed = None if recorded is None else (lambda start: recorded(account, symbol, start))
            self._ledgers[key] = SymbolLedger(symbol, self.cap, clock=self.clock, instrument=instrument,
                                              traded_volume=self.traded_volume, pace=self.pace,
                                              recorded_fills=seed)
        return self._ledgers[key]
