"""Leases: which daemon works which venue account, fenced at commit time.

One row per account in ``leases``: ``owner`` (``host:pid:random``, one per daemon start),
``epoch`` (bumped on every claim by a new owner, never reused) and ``expires_at``. Every
time is the **database's** clock (``now()``), never a daemon's: two hosts' clocks need not
agree.

- ``claim``: one atomic statement, ``INSERT ... ON CONFLICT (account) DO UPDATE ... WHERE
  expires_at < now() OR owner = me RETURNING epoch``: the account's epoch, or None while
  another owner's lease is live.
- ``renew``: pushes ``expires_at`` on, only for the same owner and epoch (None: lost).
- ``release``: expires the lease at once (graceful stop), so a standby claims it without
  waiting.
- ``check_held`` (the event store's commit precondition, ``fence``): inside the commit
  transaction, ``SELECT ... FOR SHARE`` of the row with this owner and epoch and an unexpired
  lease; ``LeaseRefused`` otherwise. The row lock holds off a competing claim until the
  commit ends, so no intent is recorded under an epoch that is no longer current.
- ``SqlFence`` (PostgreSQL, the daemon's): the same check as one statement sent with every
  commit (``genesis.store.pg_fence``), so it also works in the commit process, in the
  transaction's one round trip.

Account names (``account_name``): ``sim`` for the simulated venue; for a ccxt venue
``ccxt:<exchange id>:<key id>``, the key id being the first 12 hex digits of the SHA-256 of
the API key (the key itself is never stored).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from genesis.store.pg_fence import Statement, fence_statement

_NOW = {"postgresql": "clock_timestamp()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}
_LATER = {"postgresql": "clock_timestamp() + make_interval(secs => :seconds)",
          "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || :seconds || ' seconds')"}
_PAST = {"postgresql": "clock_timestamp() - interval '1 second'",
         "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds')"}


LEASES_CHANNEL = "genesis_leases"  # LISTEN/NOTIFY channel: "a lease was released"


class LeaseRefused(Exception):
    """The lease this writer holds is gone (expired, or claimed by another owner since)."""


@dataclass(frozen=True)
class HeldLease:
    """A lease as its holder knows it: the fencing check compares all three."""

    account: str
    owner: str
    epoch: int


@dataclass(frozen=True)
class LeaseRow:
    """One row of ``leases`` as read back (``genesis status``)."""

    account: str
    owner: str
    epoch: int
    expires_at: datetime | str
    live: bool


def new_owner() -> str:
    """This daemon start's owner name: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def account_name(venue: str, api_key: str | None = None) -> str:
    """The account a venue option and its API key stand for (see the module docstring)."""
    if not venue.startswith("ccxt:"):
        return venue
    if not api_key:
        return venue
    return f"{venue}:{hashlib.sha256(api_key.encode()).hexdigest()[:12]}"


def _sql(conn: Connection, template: str) -> str:
    name = conn.dialect.name
    return template.format(now=_NOW[name], later=_LATER[name], past=_PAST[name])


def claim(conn: Connection, account: str, owner: str, lease_seconds: float, takeover: bool = False) -> int | None:
    """Claim (or keep) ``account`` for ``owner``: its epoch, or None while another owner's lease
    is live. A new owner bumps the epoch; the same owner keeps it. ``takeover``: claim even a
    live lease (SQLite, where the daemon's file lock already proves no other daemon runs)."""
    sql = _sql(conn, """
        INSERT INTO leases (account, owner, epoch, expires_at, claimed_at)
        VALUES (:account, :owner, 1, {later}, {now})
        ON CONFLICT (account) DO UPDATE SET
            epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
            claimed_at = CASE WHEN leases.owner = excluded.owner THEN leases.claimed_at ELSE excluded.claimed_at END,
            owner = excluded.owner,
            expires_at = excluded.expires_at
        WHERE leases.expires_at < {now} OR leases.owner = excluded.owner OR :takeover
        RETURNING epoch""")
    return conn.execute(text(sql), {"account": account, "owner": owner, "seconds": lease_seconds,
                                    "takeover": takeover}).scalar()


def renew(conn: Connection, lease: HeldLease, lease_seconds: float) -> bool:
    """Push the lease on by ``lease_seconds``; False when it is no longer this owner's epoch."""
    sql = _sql(conn, "UPDATE leases SET expires_at = {later} "
                     "WHERE account = :account AND owner = :owner AND epoch = :epoch RETURNING epoch")
    return conn.execute(text(sql), {"account": lease.account, "owner": lease.owner, "epoch": lease.epoch,
                                    "seconds": lease_seconds}).scalar() is not None


def release(conn: Connection, lease: HeldLease) -> None:
    """Expire the lease now (graceful stop), if it is still this owner's epoch. PostgreSQL:
    ``NOTIFY genesis_leases`` at commit wakes the standbys at once."""
    conn.execute(text(_sql(conn, "UPDATE leases SET expires_at = {past} "
                                 "WHERE account = :account AND owner = :owner AND epoch = :epoch")),
                 {"account": lease.account, "owner": lease.owner, "epoch": lease.epoch})
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {LEASES_CHANNEL}"))


def check_held(conn: Connection, leases: Sequence[HeldLease]) -> None:
    """Raise ``LeaseRefused`` unless every lease is still held, unexpired, at its epoch. On
    PostgreSQL the rows stay share-locked until the transaction ends."""
    if not leases:
        raise LeaseRefused("no lease is held (not yet claimed, or released): nothing was written")
    lock = " FOR SHARE" if conn.dialect.name == "postgresql" else ""
    sql = _sql(conn, "SELECT epoch FROM leases WHERE account = :account AND owner = :owner "
                     "AND epoch = :epoch AND expires_at > {now}" + lock)
    for lease in leases:
        held = conn.execute(text(sql), {"account": lease.account, "owner": lease.owner,
                                        "epoch": lease.epoch}).scalar()
        if held is None:
            raise LeaseRefused(f"the lease on account {lease.account} (epoch {lease.epoch}) is no longer "
                               f"held by {lease.owner}: nothing was written")


def fence(leases: Callable[[], Sequence[HeldLease]]) -> Callable[[Connection], None]:
    """The event store precondition checking ``leases()`` (the leases held right now)."""
    return lambda conn: check_held(conn, leases())


def _ignore(reason: str) -> None:
    pass


@dataclass(frozen=True)
class SqlFence:
    """The event store's fence on PostgreSQL as SQL (``genesis.store.pg_fence``): every commit
    carries ``statement()``, the check of the leases ``held()`` right now, and fails unless
    they are all still held. ``refused(message)`` is called (from the committer: any thread)
    when a commit was refused for it."""

    held: Callable[[], Sequence[HeldLease]]
    refused: Callable[[str], None] = _ignore

    def statement(self) -> Statement:
        return fence_statement([(h.account, h.owner, h.epoch) for h in self.held()])


def seconds_until_claimable(conn: Connection, accounts: Sequence[str], owner: str) -> float:
    """By the database's clock, how long until every one of ``accounts`` held by another owner
    has expired (0 when none is live): when a standby's next claim can succeed, unless the
    holder renews or releases first."""
    sql = text(_sql(conn, "SELECT expires_at, {now} FROM leases WHERE account IN :accounts "
                          "AND owner <> :owner AND expires_at > {now}")).bindparams(bindparam("accounts", expanding=True))
    rows = conn.execute(sql, {"accounts": list(accounts), "owner": owner})
    return max((_seconds(expires, now) for expires, now in rows), default=0.0)


def _seconds(later: datetime | str, now: datetime | str) -> float:
    if isinstance(later, str):  # SQLite: text timestamps of one format
        later, now = datetime.fromisoformat(later), datetime.fromisoformat(str(now))
    return max(0.0, (later - now).total_seconds())  # type: ignore[operator]


def read_leases(conn: Connection) -> list[LeaseRow]:
    """Every lease row, by account, with whether it is live by the database's clock."""
    sql = _sql(conn, "SELECT account, owner, epoch, expires_at, expires_at > {now} FROM leases ORDER BY account")
    return [LeaseRow(a, o, e, x, bool(live)) for a, o, e, x, live in conn.execute(text(sql))]
