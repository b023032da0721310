"""The chaos verdict: what must hold after any sequence of kills and exchange faults, checked
against the daemon's database and the paper exchange's own state file (both stopped, or at
least quiet). Every check is plain SQL over the two files; nothing trusts the daemon's code.

``check(daemon_db, paper_db)`` returns a ``Verdict``: counts, and one message per failure.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from genesis.analytics.sql import readonly_uri
from genesis.domain.ids import parse_client_order_id

TERMINAL = ("completed", "cancelled", "expired", "failed")
ZERO = Decimal(0)


@dataclass
class Verdict:
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, message: str, examples: Iterable[Any] = ()) -> None:
        shown = list(examples)[:5]
        self.failures.append(message + (f" (e.g. {shown})" if shown else ""))

    def none(self, message: str, offenders: list[Any]) -> None:
        """Fail with ``message`` (and examples) when ``offenders`` is not empty."""
        if offenders:
            self.fail(message, offenders)

    def line(self, extra: dict[str, Any] | None = None) -> str:
        """One line: PASS/FAIL and every count (``extra`` first: seed, kills...)."""
        parts = [f"{k}={v}" for k, v in {**(extra or {}), **self.counts}.items()]
        head = "chaos verdict: PASS" if self.ok else f"chaos verdict: FAIL ({len(self.failures)} checks)"
        return " ".join([head, *parts])


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(readonly_uri(path), uri=True)


def check(daemon_db: Path, paper_db: Path, expected_executions: Iterable[str] = (),
          require_terminal: bool = True) -> Verdict:
    """Every check of the issue; ``expected_executions``: the ids the run submitted (each must
    exist); ``require_terminal``: every execution must have ended (the run drained)."""
    v = Verdict()
    d, p = _ro(daemon_db), _ro(paper_db)
    try:
        intents = _intents(d)
        _orders(v, p, intents)
        _executions(v, d, p, intents, list(expected_executions), require_terminal)
        _fills(v, d, p, intents)
        _events(v, d)
    finally:
        d.close()
        p.close()
    _projections(v, daemon_db)
    for name, path in (("daemon", daemon_db), ("exchange", paper_db)):
        conn = _ro(path)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
        if result != ["ok"]:
            v.fail(f"PRAGMA integrity_check on the {name} database: {result[:3]}")
    v.counts["integrity"] = "ok" if not any("integrity_check" in f for f in v.failures) else "BAD"
    return v


def _intents(d: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Every durable OrderIntended, by client order id (the event log, not a projection)."""
    out: dict[str, dict[str, Any]] = {}
    dupes = []
    for agg, data in d.execute("SELECT aggregate_id, event_data FROM events WHERE event_type = 'OrderIntended'"):
        e = json.loads(data)
        cid = e["client_order_id"]
        if cid in out:
            dupes.append(cid)
        out[cid] = {"execution_id": agg, **e}
    out["__dupes__"] = {"ids": dupes}  # intended twice: reported by _orders
    return out


# the client order id as sent: an id the paper exchange took again (its order filled, as Binance
# does) is stored as <id>#<order id> (genesis.paper.store) and counts as a second order under <id>
_SENT_ID = ("CASE WHEN instr(client_order_id, '#') > 0 THEN substr(client_order_id, 1, instr(client_order_id, '#') - 1) "
            "ELSE client_order_id END")


def _orders(v: Verdict, p: sqlite3.Connection, intents: dict[str, dict[str, Any]]) -> None:
    dupes = intents.pop("__dupes__")["ids"]
    v.none("client order ids intended twice in the daemon's events", dupes)
    rows = p.execute(f"SELECT {_SENT_ID}, symbol, side, type, orig_qty, price FROM orders").fetchall()
    per_id = Counter(r[0] for r in rows)
    v.counts["exchange_orders"] = len(rows)
    twice = [cid for cid, n in per_id.items() if n > 1]
    v.none("client order ids with more than one exchange order", twice)
    no_intent, mismatched = [], []
    for cid, symbol, side, kind, qty, price in rows:
        intent = intents.get(cid)
        if intent is None:
            no_intent.append(cid)
            continue
        execution, slice_index, _ = parse_client_order_id(cid)
        same = (execution == intent["execution_id"] and slice_index == intent["slice_index"]
                and Decimal(qty) == Decimal(intent["qty"])
                and (kind == "MARKET") == (intent["order_type"] == "market"))
        if not same:
            mismatched.append(cid)
    # every order request the exchange ever received (accepted or not) had a durable intent
    sent = {r[0] for r in p.execute("SELECT DISTINCT client_order_id FROM requests WHERE method = 'POST' "
                                    "AND path = '/api/v3/order' AND client_order_id IS NOT NULL")}
    no_intent += sorted(sent - set(intents) - set(no_intent))
    v.none("orders reached the exchange without a durable intent", no_intent)
    v.none("exchange orders that differ from their intent (id reused for another slice/order)", mismatched)
    v.counts["dup_client_ids"] = len(twice)
    v.counts["orders_without_intent"] = len(no_intent)


def _executions(v: Verdict, d: sqlite3.Connection, p: sqlite3.Connection, intents: dict[str, dict[str, Any]],
                expected: list[str], require_terminal: bool) -> None:
    rows = d.execute("SELECT execution_id, state, target_qty, filled_qty FROM executions").fetchall()
    states = Counter(r[1] for r in rows)
    v.counts["executions"] = len(rows)
    v.counts["completed"] = states.get("completed", 0)
    v.counts["expired"] = states.get("expired", 0)
    others = {k: n for k, n in states.items() if k not in ("completed", "expired")}
    if others:
        v.counts["other_states"] = ",".join(f"{k}:{n}" for k, n in sorted(others.items()))
    known = {r[0] for r in rows}
    lost = [e for e in expected if e not in known]
    v.none("submitted executions missing from the daemon's database", lost)
    if require_terminal:
        live = [r[0] for r in rows if r[1] not in TERMINAL]
        v.none("executions still live after the drain", live)
    # what the exchange executed for each execution, from its own orders table
    executed: dict[str, Decimal] = {}
    for cid, qty in p.execute(f"SELECT {_SENT_ID}, executed_qty FROM orders"):
        intent = intents.get(cid)
        if intent is not None:
            executed[intent["execution_id"]] = executed.get(intent["execution_id"], ZERO) + Decimal(qty)
    over, short, differ = [], [], []
    for execution_id, state, target, filled in rows:
        target_d, filled_d = Decimal(target), Decimal(filled)
        if filled_d > target_d:
            over.append(execution_id)
        if state == "completed" and filled_d != target_d:
            short.append(execution_id)
        if executed.get(execution_id, ZERO) != filled_d and (state in TERMINAL or not require_terminal):
            differ.append((execution_id, str(filled_d), str(executed.get(execution_id, ZERO))))
    v.none("executions filled beyond their parent quantity", over)
    v.none("completed executions whose fills do not equal the parent quantity", short)
    v.none("executions whose recorded fills differ from what the exchange executed", differ)
    v.counts["overfilled"] = len(over)


def _fills(v: Verdict, d: sqlite3.Connection, p: sqlite3.Connection, intents: dict[str, dict[str, Any]]) -> None:
    trades = {str(r[0]): (r[1], Decimal(r[2]), Decimal(r[3])) for r in p.execute(
        f"SELECT t.trade_id, {_SENT_ID.replace('client_order_id', 'o.client_order_id')}, t.qty, t.price "
        "FROM trades t JOIN orders o USING (order_id)")}
    events = Counter(json.loads(data)["trade_id"] for (data,) in d.execute(
        "SELECT event_data FROM events WHERE event_type = 'FillRecorded'"))
    rows = {}
    projected = Counter()
    for trade_id, cid, qty, price in d.execute("SELECT trade_id, client_order_id, qty, price FROM fills"):
        projected[trade_id] += 1
        rows[trade_id] = (cid, Decimal(qty), Decimal(price))
    v.counts["exchange_trades"] = len(trades)
    missing = [t for t in trades if events[t] == 0]
    twice = [t for t, n in events.items() if n > 1] + [t for t, n in projected.items() if n > 1]
    phantom = [t for t in events if t not in trades]
    wrong = [t for t, row in rows.items() if t in trades and row != trades[t]]
    v.none("exchange fills not recorded by the daemon", missing)
    v.none("exchange fills recorded more than once", twice)
    v.none("daemon fills the exchange never made", phantom)
    v.none("daemon fills that differ from the exchange's (order, qty, price)", wrong)
    v.counts["fills_missing"] = len(missing)
    v.counts["fills_duplicated"] = len(twice)


def _events(v: Verdict, d: sqlite3.Connection) -> None:
    gaps = [agg for agg, n, lo, hi in d.execute(
        "SELECT aggregate_id, COUNT(*), MIN(aggregate_version), MAX(aggregate_version) FROM events "
        "GROUP BY aggregate_id") if not (lo == 1 and hi == n)]
    n, distinct, lo, hi = d.execute("SELECT COUNT(*), COUNT(DISTINCT sequence_number), MIN(sequence_number), "
                                    "MAX(sequence_number) FROM events").fetchone()
    v.counts["events"] = n
    v.none("aggregates whose versions are not 1..n without gaps", gaps)
    if distinct != n:
        v.fail(f"global sequence numbers not unique ({n} events, {distinct} distinct numbers)")
    elif n and not (lo == 1 and hi == n):
        v.fail(f"global sequence numbers not gap-free ({n} events numbered {lo}..{hi})")
    v.counts["version_gaps"] = len(gaps)


def _projections(v: Verdict, daemon_db: Path) -> None:
    """Rebuild the projections from the events on a copy and compare every row."""
    from genesis.store import tables as t
    from genesis.store.db import sync_engine
    from genesis.domain.state import IllegalTransition
    from genesis.store.projector import rebuild_sync
    from sqlalchemy.exc import IntegrityError

    with tempfile.TemporaryDirectory(prefix="genesis-chaos-") as tmp:
        copy = Path(tmp) / "rebuilt.db"
        src, dst = _ro(daemon_db), sqlite3.connect(copy)
        try:
            src.backup(dst)  # consistent copy, WAL content included
        finally:
            src.close()
            dst.close()
        engine = sync_engine(copy)
        try:
            with engine.begin() as conn:
                rebuild_sync(conn)
        except (KeyError, ValueError, TypeError, IllegalTransition, IntegrityError) as exc:
            # the event log itself does not replay (an event lost or altered, e.g. an execution's
            # first event, so its slices have no execution row): that is the finding
            v.fail("projections cannot be rebuilt: the events do not replay", [f"{type(exc).__name__}: {exc}"])
            v.counts["projections"] = "UNREPLAYABLE"
            return
        finally:
            engine.dispose()
        live, rebuilt = _ro(daemon_db), _ro(copy)
        diffs = []
        try:
            for table in t.PROJECTION_TABLES:
                keys = ", ".join(c.name for c in table.primary_key.columns)
                q = f"SELECT * FROM {table.name} ORDER BY {keys}"
                a, b = live.execute(q).fetchall(), rebuilt.execute(q).fetchall()
                if a != b:
                    only = sorted(set(a) ^ set(b), key=repr)
                    diffs.append((table.name, len(a), len(b), only[:1]))
        finally:
            live.close()
            rebuilt.close()
        shutil.rmtree(tmp, ignore_errors=True)
    v.none("projections rebuilt from the events differ from the live ones", diffs)
    v.counts["projections"] = "equal" if not diffs else "DIFFER"
