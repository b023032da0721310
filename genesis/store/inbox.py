"""The command inbox: durable requests written by the CLI, read and settled by the daemon.

The CLI only ever inserts here (it is not an event writer); the daemon turns each command
into events, marking it processed in the same transaction as those events. On PostgreSQL
every inserting transaction also sends ``NOTIFY genesis_commands`` (delivered at its
commit): the daemon listens and reads the inbox at once instead of at its next poll.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import String, bindparam, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from genesis.domain.ids import new_execution_id
from genesis.domain.state import TERMINAL_STATES
from genesis.requests import RequestError, SubmitRequest, shown
from genesis.store import tables as t

CONTROL_KINDS = ("pause", "resume", "cancel", "urgency")
SETTLED_OK = ("accepted", "duplicate", "noop")  # outcomes that did what was asked (or had nothing to do)
_TERMINAL = {s.value for s in TERMINAL_STATES}


COMMANDS_CHANNEL = "genesis_commands"  # LISTEN/NOTIFY channel: "new rows in commands"


def notify_daemon(conn: Connection) -> None:
    """PostgreSQL: wake the listening daemon when this transaction commits (SQLite: nothing)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {COMMANDS_CHANNEL}"))


@dataclass(frozen=True, slots=True)
class Command:
    command_id: int
    kind: str
    execution_id: str
    payload: dict[str, Any] | None  # None: not a JSON object
    created_at: datetime


def enqueue_submit(engine: Engine, req: SubmitRequest) -> tuple[str, bool]:
    """Record a submission. Returns ``(execution_id, created)``; the same ``request_id`` always
    maps to the same execution, and reusing it for a different order is an error."""
    execution_id = new_execution_id(req.request_id)
    payload = req.payload()
    try:
        with engine.begin() as conn:
            check_account(conn, req.account)
            conn.execute(insert(t.commands), {
                "request_id": req.request_id, "kind": "submit", "execution_id": execution_id,
                "payload": json.dumps(payload, sort_keys=True), "created_at": datetime.now(timezone.utc),
                "account": req.account})
            notify_daemon(conn)
        return execution_id, True
    except IntegrityError:
        if req.request_id is None:
            raise
        with engine.connect() as conn:
            row = conn.execute(select(t.commands.c.execution_id, t.commands.c.payload)
                               .where(t.commands.c.request_id == req.request_id)).one()
        if not _same_order(json.loads(row.payload), payload):
            raise RequestError("id", f"request id {req.request_id!r} was already used for a different order "
                                     f"(execution {row.execution_id}); choose a new --id") from None
        return row.execution_id, False


def enqueue_submits(engine: Engine, reqs: list[SubmitRequest]) -> list[tuple[str, bool]]:
    """Record many submissions in one transaction: all of them, or none (a request id already
    used for a different order raises ``RequestError`` and nothing is stored). Each result is
    ``(execution_id, created)`` as for ``enqueue_submit``; a repeated request id, in the
    database or earlier in ``reqs``, maps to its first execution."""
    for attempt in (1, 2):  # a concurrent insert of one of the ids: the second pass finds it
        try:
            with engine.begin() as conn:
                results = [_submit_in(conn, req, index) for index, req in enumerate(reqs)]
                notify_daemon(conn)
                return results
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _submit_in(conn: Connection, req: SubmitRequest, index: int) -> tuple[str, bool]:
    payload = req.payload()
    if req.request_id is not None:
        row = conn.execute(select(t.commands.c.execution_id, t.commands.c.payload)
                           .where(t.commands.c.request_id == req.request_id)).first()
        if row is not None:
            if not _same_order(json.loads(row.payload), payload):
                raise RequestError("id", f"order {index + 1}: request id {req.request_id!r} was already used for "
                                         f"a different order (execution {row.execution_id}); choose a new id")
            return row.execution_id, False
    execution_id = new_execution_id(req.request_id)
    check_account(conn, req.account, f"order {index + 1}: ")
    conn.execute(insert(t.commands), {
        "request_id": req.request_id, "kind": "submit", "execution_id": execution_id,
        "payload": json.dumps(payload, sort_keys=True), "created_at": datetime.now(timezone.utc),
        "account": req.account})
    return execution_id, True


def check_account(conn: Connection, account: str | None, where: str = "") -> None:
    """A submission for an account no daemon has ever held on this database would wait in the
    inbox forever: refused (``RequestError`` on ``account``) once some daemon has held a lease
    (before that, nobody's accounts are known and any is taken)."""
    if account is None:
        return
    known = sorted(conn.scalars(select(t.leases.c.account)))
    if known and account not in known:
        raise RequestError("account", f"{where}no daemon holds account {shown(account)} on this database "
                                      f"(known: {', '.join(known)}); start one with --accounts {account}")


def _same_order(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal payloads, with amounts compared as numbers (``--qty 1.0`` is ``--qty 1``)."""
    def canonical(p: dict[str, Any]) -> dict[str, Any]:
        return {k: (Decimal(v) if k in ("qty", "limit_price") and v is not None else v) for k, v in p.items()}
    return canonical(stored) == canonical(new)


def enqueue_control(engine: Engine, kind: str, execution_id: str, payload: dict[str, Any] | None = None) -> int:
    """Record a control command; returns its command id. Refused here, before anything is
    stored, when the daemon could only refuse it: no such execution, one that was rejected or
    has ended, urgency of anything but a VWAP."""
    if kind not in CONTROL_KINDS:
        raise ValueError(f"unknown command kind {kind!r}")
    from genesis.algorithms.registry import urgency_algorithms  # on use: it brings the engine's market data

    with engine.begin() as conn:
        algo, state, account = _target(conn, execution_id)
        if state in _TERMINAL or state == "rejected":
            raise RequestError("id", f"execution {execution_id} is {state}: there is nothing to {kind}")
        if kind == "urgency" and algo not in urgency_algorithms():
            raise RequestError("urgency", f"applies to {' or '.join(urgency_algorithms())} executions only; "
                                          f"{execution_id} is {algo}")
        result = conn.execute(insert(t.commands), {
            "kind": kind, "execution_id": execution_id, "payload": json.dumps(payload or {}, sort_keys=True),
            "created_at": datetime.now(timezone.utc), "account": account})
        notify_daemon(conn)
        return int(result.inserted_primary_key[0])


def _target(conn: Connection, execution_id: str) -> tuple[str | None, str, str | None]:
    """``(algo, state, account)`` of an execution, or of its submission while the daemon has not
    taken it (state ``queued``, or ``rejected``); account None: not known (any daemon's)."""
    e = t.executions.c
    row = conn.execute(select(e.algo, e.state, e.account).where(e.execution_id == execution_id)).first()
    if row is not None:
        return row.algo, row.state, row.account or None
    c = t.commands.c
    submitted = conn.execute(select(c.payload, c.outcome, c.account).where(
        (c.execution_id == execution_id) & (c.kind == "submit")).order_by(c.command_id)).first()
    if submitted is None:
        raise RequestError("id", f"no execution {shown(execution_id)} (see `genesis status`)")
    algo = (_payload(submitted.payload) or {}).get("algo")
    state = "rejected" if submitted.outcome == "rejected" else "queued"
    return (str(algo) if algo is not None else None), state, submitted.account


def submit_command_id(engine: Engine, execution_id: str) -> int:
    """The command id of the submission of ``execution_id``."""
    c = t.commands.c
    with engine.connect() as conn:
        return int(conn.execute(select(c.command_id).where((c.execution_id == execution_id) & (c.kind == "submit"))
                                .order_by(c.command_id)).scalar_one())


def wait_for_verdict(engine: Engine, command_id: int, timeout_seconds: float,
                     poll_seconds: float = 0.1) -> tuple[str, str | None] | None:
    """``(outcome, detail)`` once the daemon has settled the command (``accepted``, ``rejected``,
    ``ignored``, ...), or None if it has not within ``timeout_seconds``."""
    c = t.commands.c
    deadline = time.monotonic() + timeout_seconds
    while True:
        with engine.connect() as conn:
            row = conn.execute(select(c.processed_at, c.outcome, c.detail).where(c.command_id == command_id)).one()
        if row.processed_at is not None:
            return row.outcome or "processed", row.detail
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(poll_seconds, remaining))


async def claim_commands(conn: AsyncConnection, owner: str, accounts: tuple[str, ...], limit: int = 500
                         ) -> list[Command]:
    """PostgreSQL, several daemons on one inbox: claim the pending commands of ``accounts``
    (or of no account) that nobody holds (or whose claimant no longer holds a live lease) for
    ``owner`` with ``FOR UPDATE SKIP LOCKED``, so no two daemons take the same command, and
    return every pending command ``owner`` holds, oldest first. A command for another account
    stays pending for the daemon holding it. Run it in a transaction; the claims count once it
    commits."""
    await conn.execute(_CLAIM, {"owner": owner, "limit": limit, "accounts": list(accounts)})
    c = t.commands.c
    rows = await conn.execute(
        select(c.command_id, c.kind, c.execution_id, c.payload, c.created_at)
        .where(c.processed_at.is_(None) & (c.claimed_by == owner)).order_by(c.command_id).limit(limit))
    return [Command(r.command_id, r.kind, r.execution_id, _payload(r.payload), r.created_at) for r in rows]


_CLAIM = """
    UPDATE commands SET claimed_by = :owner WHERE command_id IN (
        SELECT c.command_id FROM commands c
        WHERE c.processed_at IS NULL AND (c.account IS NULL OR c.account IN :accounts)
          AND (c.claimed_by IS NULL OR (c.claimed_by <> :owner AND NOT EXISTS (
            SELECT 1 FROM leases l WHERE l.owner = c.claimed_by AND l.expires_at > clock_timestamp())))
        ORDER BY c.command_id LIMIT :limit
        FOR UPDATE OF c SKIP LOCKED)"""
_CLAIM = text(_CLAIM).bindparams(bindparam("accounts", expanding=True, type_=String()))


async def unclaim_command(conn: AsyncConnection, command_id: int, owner: str) -> None:
    """Give a claimed, still pending command back (it is another daemon's to take)."""
    c = t.commands.c
    await conn.execute(update(t.commands).where((c.command_id == command_id) & (c.claimed_by == owner)
                                                & c.processed_at.is_(None)).values(claimed_by=None))


async def worked_elsewhere(conn: AsyncConnection, execution_id: str, owner: str) -> bool:
    """Whether another daemon may be working ``execution_id``: it is live (or its submission
    is still pending) and some other owner holds a live lease. A command for it is left in the
    inbox for that daemon rather than settled as ``ignored`` here."""
    others = await conn.scalar(text("SELECT count(*) FROM leases WHERE owner <> :owner "
                                    "AND expires_at > clock_timestamp()"), {"owner": owner})
    if not others:
        return False
    state = await conn.scalar(select(t.executions.c.state).where(t.executions.c.execution_id == execution_id))
    if state is not None:
        return state not in _TERMINAL and state != "rejected"
    c = t.commands.c
    pending = await conn.scalar(select(c.command_id).where(
        (c.execution_id == execution_id) & (c.kind == "submit") & c.processed_at.is_(None)).limit(1))
    return pending is not None


async def pending_commands(conn: AsyncConnection, accounts: tuple[str, ...] | None = None,
                           limit: int = 500) -> list[Command]:
    """The pending commands, oldest first: of ``accounts`` or of no account (None: all)."""
    c = t.commands.c
    mine = c.processed_at.is_(None)
    if accounts is not None:
        mine = mine & (c.account.is_(None) | c.account.in_(accounts))
    rows = await conn.execute(
        select(c.command_id, c.kind, c.execution_id, c.payload, c.created_at)
        .where(mine).order_by(c.command_id).limit(limit))
    return [Command(r.command_id, r.kind, r.execution_id, _payload(r.payload), r.created_at) for r in rows]


def _payload(text: str) -> dict[str, Any] | None:
    """The command's payload, or None when it is not a JSON object (the daemon rejects it)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
