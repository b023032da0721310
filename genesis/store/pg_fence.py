"""The account-lease fence as one SQL statement, sent with the transaction it guards.

The daemon on PostgreSQL must not commit anything (an ``OrderIntended`` above all) unless it
still holds every account lease at its epoch (``genesis.store.leases``). ``fence_statement``
is that check as a statement of the transaction itself, ``(FENCE_SQL, [(leases as JSON,)])``:
it share-locks the lease rows of this owner and epoch that are unexpired by the database's
clock (a competing claim waits for the commit), and when one is missing it fails, which
fails the whole transaction. Being plain SQL with no result to wait for, it goes in the
commit process's pipeline with the lock, the shift, the statements and the commit: one
round trip (``genesis.store.pg_commit_process``).

How it fails without a function of its own (no migration): the refusal is the text of a
cast to ``integer`` of a message built from the rows, evaluated only in the ``CASE`` branch
taken when a lease is missing (it depends on the rows, so the planner cannot fold it early).
The server's error is then ``invalid input syntax for type integer: "genesis lease refused:
..."``; ``lease_refusal`` recognises it and returns the message.

Standard library only: the commit process imports it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

REFUSED_MARK = "genesis lease refused: "

FENCE_SQL = (
    "WITH wanted AS (SELECT account, owner, epoch FROM json_populate_recordset(NULL::leases, %s::json)), "
    "held AS (SELECT l.account FROM leases AS l JOIN wanted AS w USING (account, owner, epoch) "
    "WHERE l.expires_at > clock_timestamp() FOR SHARE OF l), "
    "missing AS (SELECT * FROM wanted WHERE account NOT IN (SELECT account FROM held)) "
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM wanted) AND NOT EXISTS (SELECT 1 FROM missing) THEN 1 "
    f"ELSE ('{REFUSED_MARK}' || COALESCE((SELECT string_agg('the lease on account ' || account || ' (epoch ' "
    "|| epoch || ') is no longer held by ' || owner, '; ') FROM missing), "
    "'no lease is held (not yet claimed, or released)'))::integer END")

_REFUSAL = re.compile(re.escape(REFUSED_MARK) + r'(.*)"', re.DOTALL)

Statement = tuple[str, list[Any]]


def fence_statement(leases: Sequence[tuple[str, str, int]]) -> Statement:
    """The fence over ``leases`` (account, owner, epoch) as a statement of a transaction."""
    document = json.dumps([{"account": a, "owner": o, "epoch": e} for a, o, e in leases], separators=(",", ":"))
    return FENCE_SQL, [(document,)]


def hoisted(statements: list[Statement]) -> list[Statement]:
    """``statements`` (several transactions committed as one) with their fences first, each
    distinct one once: one check per commit instead of one per transaction merged."""
    fences: list[Statement] = []
    for statement in statements:
        if statement[0] == FENCE_SQL and statement not in fences:
            fences.append(statement)
    if not fences:
        return statements
    return fences + [s for s in statements if s[0] != FENCE_SQL]


def lease_refusal(message: str) -> str | None:
    """The fence's message when the server's error ``message`` is the fence refusing, else None."""
    found = _REFUSAL.search(message)
    return None if found is None else f"{found[1]}: nothing was written"
