"""The daemon's side of the account leases (``genesis.store.leases``).

``LeaseKeeper`` claims every account the daemon works (one transaction: all or none), waits
in standby while another daemon holds any of them (until the expiry read from the lease row,
a release notification, or a second at most), renews them every third of the lease, and
releases them at a graceful stop. ``may_send`` says whether an order may be sent now: the
leases held and, by this daemon's own monotonic clock, unexpired (counted from the moment each
claim or renewal was *sent*, so never later than the database's expiry; see
``genesis.venue.send_fence``). ``lost`` is set when a renewal finds a lease gone, when the
renewals have failed for a whole lease period (the database unreachable: by now the lease may
have expired and been claimed), or when the event store's fencing check refused a commit.

On PostgreSQL the event store runs with ``store_options()``: the fence as SQL sent with every
commit (``genesis.store.leases.SqlFence``, in the commit process's one round trip), so no
transaction (an ``OrderIntended`` above all) commits unless this daemon still holds every
lease at its epoch. On SQLite one daemon per file is enforced
by the file lock: the keeper takes the lease over at once and installs no fence.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Sequence

import structlog
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from genesis.engine.command_listener import listen_for_lease_releases
from genesis.store import leases
from genesis.store.db import sync_engine
from genesis.store.leases import HeldLease
from genesis.store.location import Db, is_postgres
from genesis.store.pg_session import bounded_lock_wait, end_stalled_holders, stall_bound_seconds

log = structlog.get_logger("genesis.leases")

DEFAULT_LEASE_SECONDS = 15.0
STANDBY_POLL_SECONDS = 1.0  # a standby tries to claim at least this often (a missed release NOTIFY)
EXPIRY_MARGIN_SECONDS = 0.02  # a standby tries again this long after the lease it waits for expires
RENEW_RETRY_SECONDS = 0.2  # after a failed renewal, the next attempt (the database may be back)


def _elapsed() -> float:
    """Seconds on a clock that also runs while the host is suspended (Linux ``CLOCK_BOOTTIME``;
    elsewhere the monotonic clock): the lease runs on in the database meanwhile."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


def default_account(venue: str) -> str:
    """The account of the daemon's own venue: ``sim``, or ``ccxt:<id>:<key id>`` from its
    configured API key (just ``ccxt:<id>`` while none is configured: the venue refuses to
    start then anyway)."""
    if not venue.startswith("ccxt:"):
        return venue
    from genesis.venue.credentials import CredentialsError, load_credentials

    try:
        credentials = load_credentials(venue.split(":", 1)[1])
    except CredentialsError:
        credentials = None
    return leases.account_name(venue, credentials.api_key if credentials else None)


def _lock_timeout(exc: OperationalError) -> bool:
    """Whether ``exc`` is PostgreSQL's ``lock_timeout`` (SQLSTATE 55P03, ``LockNotAvailable``)."""
    return getattr(exc.orig, "sqlstate", None) == "55P03"


class LeaseKeeper:
    """Claims, renews and releases the leases of ``accounts`` for this daemon start."""

    def __init__(self, db: Db, accounts: Sequence[str], lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 owner: str | None = None):
        self.accounts = tuple(accounts)
        self.lease_seconds = lease_seconds
        self.owner = owner or leases.new_owner()
        self.fenced = is_postgres(db)
        self.held: tuple[HeldLease, ...] = ()
        self.held_until = 0.0  # _elapsed() before which the leases certainly have not expired
        self.lost = asyncio.Event()
        self._released = asyncio.Event()  # set on a lease release NOTIFY (``leases.release``)
        self._db = db
        self.stall_bound_s = stall_bound_seconds(lease_seconds)  # genesis.store.pg_session
        self._engine = sync_engine(db, self.stall_bound_s)
        self._loop: asyncio.AbstractEventLoop | None = None

    def store_options(self) -> dict[str, Any]:
        """``EngineOptions`` keyword arguments: on PostgreSQL the lease fence and the stall
        bound of this lease (``genesis.store.pg_session``)."""
        if not self.fenced:
            return {}
        return {"fence": leases.SqlFence(lambda: self.held, self._fence_refused), "stall_bound_s": self.stall_bound_s}

    def may_send(self) -> bool:
        """Whether an order may be sent now: every lease held, not lost, and unexpired by this
        daemon's own reckoning (``held_until``)."""
        return bool(self.held) and not self.lost.is_set() and _elapsed() < self.held_until

    def _fence_refused(self, reason: str) -> None:
        """A commit was refused by the fence (called from the committer: any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._mark_lost, "the commit's fencing check refused")

    def _mark_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            log.warning("lease_lost", accounts=list(self.accounts), owner=self.owner, reason=reason)
            self.lost.set()

    async def wait_claimed(self, stop: asyncio.Event, on_standby: Callable[[], None] = lambda: None) -> bool:
        """Standby until every account is claimed (True), or until ``stop`` is set (False).
        ``on_standby()`` is called once, when the first claim is refused."""
        self._loop = asyncio.get_running_loop()
        listener = (asyncio.create_task(listen_for_lease_releases(self._db, self._released.set), name="lease-listener")
                    if self.fenced else None)
        try:
            return await self._claim_loop(stop, on_standby)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _claim_loop(self, stop: asyncio.Event, on_standby: Callable[[], None]) -> bool:
        announced = False
        while not stop.is_set():
            self._released.clear()  # before the attempt: a release after it ends the wait at once
            sent_at = _elapsed()  # the database's expiry is counted from later than this
            try:
                held, wait = await asyncio.to_thread(self._claim_all)
            except SQLAlchemyError as exc:
                log.error("lease_claim_failed", error=str(getattr(exc, "orig", None) or exc).strip())
                held, wait = None, STANDBY_POLL_SECONDS
            if held is not None:
                self.held, self.held_until = held, sent_at + self.lease_seconds
                log.info("lease_claimed", owner=self.owner,
                         leases={h.account: h.epoch for h in held}, lease_seconds=self.lease_seconds)
                return True
            if not announced:
                log.info("lease_standby", accounts=list(self.accounts), owner=self.owner)
                on_standby()
                announced = True
            await self._standby_wait(stop, wait)
        return False

    async def _standby_wait(self, stop: asyncio.Event, until_expiry: float) -> None:
        """Until the awaited lease expires (plus a margin), a release is announced, or ``stop``;
        never longer than ``STANDBY_POLL_SECONDS``."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._released.wait())]
        try:
            await asyncio.wait(waits, timeout=min(STANDBY_POLL_SECONDS, until_expiry + EXPIRY_MARGIN_SECONDS),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _claim_all(self) -> tuple[tuple[HeldLease, ...] | None, float]:
        """Every lease claimed (and no wait), or None and how long until the leases it waits for
        expire. On PostgreSQL a stalled session holding what the claim needs is ended first, and
        the claim waits for a row lock at most the stall bound (then it is tried again)."""
        self._end_stalled_holders()
        with self._engine.connect() as conn:
            with conn.begin() as tx:
                try:
                    if self.fenced:
                        bounded_lock_wait(conn, self.stall_bound_s)
                    epochs = [leases.claim(conn, a, self.owner, self.lease_seconds, takeover=not self.fenced)
                              for a in self.accounts]
                except OperationalError as exc:
                    if not _lock_timeout(exc):
                        raise
                    log.info("lease_claim_waited", error=str(exc.orig).strip(), stall_bound_s=self.stall_bound_s)
                    tx.rollback()
                    return None, 0.0  # the holder is ended by the next attempt once stalled for the bound
                if any(e is None for e in epochs):
                    tx.rollback()
            if any(e is None for e in epochs):
                with conn.begin():
                    return None, leases.seconds_until_claimable(conn, self.accounts, self.owner)
        return tuple(HeldLease(a, self.owner, e) for a, e in zip(self.accounts, epochs)), 0.0  # type: ignore[arg-type]

    async def keep(self) -> None:
        """Renew every third of the lease until a lease is lost (``lost`` set), then return.
        After a failed renewal (the database restarting, unreachable) the next attempt comes
        ``RENEW_RETRY_SECONDS`` later, so the lease is renewed as soon as the database answers
        again rather than up to a third of the lease later (when a standby may have claimed it)."""
        renewed_at = time.monotonic()
        interval = self.lease_seconds / 3
        while not self.lost.is_set():
            try:
                await asyncio.wait_for(self.lost.wait(), interval)
                return
            except asyncio.TimeoutError:
                pass
            sent_at = _elapsed()
            try:
                if not await asyncio.to_thread(self._renew_all):
                    self._mark_lost("a renewal found the lease claimed by another owner or gone")
                    return
                renewed_at, interval = time.monotonic(), self.lease_seconds / 3
                self.held_until = sent_at + self.lease_seconds
            except SQLAlchemyError as exc:
                if interval == self.lease_seconds / 3:  # the first failure in a row (the retries: debug)
                    log.error("lease_renew_failed", error=str(getattr(exc, "orig", None) or exc).strip())
                else:
                    log.debug("lease_renew_failed_again", error=str(getattr(exc, "orig", None) or exc).strip())
                interval = min(RENEW_RETRY_SECONDS, self.lease_seconds / 3)
                if time.monotonic() - renewed_at >= self.lease_seconds:
                    self._mark_lost("no renewal succeeded for a whole lease period")
                    return

    def _renew_all(self) -> bool:
        self._end_stalled_holders()  # a stalled session blocking this daemon's commits or renewals
        with self._engine.begin() as conn:
            if self.fenced:
                bounded_lock_wait(conn, self.stall_bound_s)  # a lock timeout: retried as a failed renewal
            return all(leases.renew(conn, h, self.lease_seconds) for h in self.held)

    def _end_stalled_holders(self) -> None:
        """PostgreSQL: end the genesis sessions stalled in a transaction that blocks others
        (``genesis.store.pg_session.end_stalled_holders``); a failure is logged, not raised."""
        if not self.fenced:
            return
        try:
            with self._engine.begin() as conn:
                ended = end_stalled_holders(conn, self.stall_bound_s)
        except SQLAlchemyError as exc:
            log.warning("stalled_holders_not_ended", error=str(getattr(exc, "orig", None) or exc).strip())
            return
        if ended:
            log.warning("stalled_holders_ended", pids=ended, stall_bound_s=self.stall_bound_s)

    async def release(self) -> None:
        """Expire the held leases now (graceful stop): a standby claims them without waiting."""
        held, self.held = self.held, ()
        if held:
            try:
                await asyncio.to_thread(self._release_all, held)
                log.info("lease_released", leases={h.account: h.epoch for h in held})
            except SQLAlchemyError as exc:
                log.error("lease_release_failed", error=str(getattr(exc, "orig", None) or exc).strip())

    def _release_all(self, held: Sequence[HeldLease]) -> None:
        with self._engine.begin() as conn:
            for h in held:
                leases.release(conn, h)

    def close(self) -> None:
        self._engine.dispose()
