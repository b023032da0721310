"""Projections: the tables people query, derived from events.

``statements`` plans the SQL that ``events`` (already folded into the aggregate) imply; the
writer runs it in the same transaction as the event insert. ``rebuild`` replays the whole
event log through the same code. INSERT and UPDATE, and one upsert (a re-plan's slices, some of
them new) built per dialect with SQLite's and PostgreSQL's ``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from itertools import compress
from operator import is_not
from typing import Any, Iterator

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from genesis.domain import events as ev
from genesis.domain.codec import decode
from genesis.domain.execution import Execution
from genesis.domain.orders import OrderStatus
from genesis.store import tables as t
from genesis.store.bulk import bulk, driver_rows

ZERO = Decimal(0)

Statement = tuple[Executable, dict[str, Any] | list[dict[str, Any]]]


def execution_row(agg: Execution) -> dict[str, Any]:
    """The ``executions`` row of an aggregate: a pure function of its state."""
    return {
        "execution_id": agg.execution_id,
        "request_id": agg.request_id,
        "algo": agg.algo,
        "execution_style": agg.execution_style,
        "symbol": agg.symbol,
        "side": agg.side.value,
        "target_qty": agg.qty,
        "limit_price": agg.limit_price,
        "duration_seconds": agg.duration_seconds,
        "submitted_at": agg.submitted_at,
        "account": agg.account,
        **dict(zip(STATE_COLUMNS, state_columns(agg))),
    }


# the columns of ``executions`` that change after ExecutionSubmitted (the others never do)
STATE_COLUMNS = (
    "state", "filled_qty", "arrival_price", "notional_usdt", "fees_usdt", "slice_count", "slices_executed",
    "slices_denied", "started_at", "end_at", "ended_at", "paused_at", "paused_seconds", "completion_reason",
    "version", "early_completion_at", "maker_qty", "urgency", "market_vwap", "slippage_vs_vwap_bps",
    "held_since", "hold_reason", "held_seconds",
    "remaining_qty", "avg_price", "implementation_shortfall_bps",
)


def state_columns(agg: Execution, previous: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    """The values of ``STATE_COLUMNS``. With the values last written (``previous``), the
    columns derived from the fills are reused while the fills are unchanged (Decimals are
    immutable: the same objects mean the same values)."""
    filled, notional, arrival = agg.filled_qty, agg.filled_notional, agg.arrival_price
    if previous is not None and previous[1] is filled and previous[3] is notional and previous[2] is arrival:
        derived = previous[-3:]
    else:
        derived = (agg.remaining_qty, _q8(agg.avg_price), agg.implementation_shortfall_bps)
    return (
        agg.state.value, filled, arrival, notional, agg.fees, len(agg.slices) or agg.slice_count,
        agg.slices_executed, agg.slices_denied, agg.started_at, agg.end_at, agg.ended_at, agg.paused_at,
        agg.paused_seconds, agg.completion_reason, agg.version, agg.early_completion_at, agg.maker_qty,
        agg.urgency, agg.market_vwap, agg.slippage_vs_vwap_bps, agg.held_since, agg.hold_reason,
        agg.held_seconds, *derived,
    )


def _q8(v: Decimal | None) -> Decimal | None:
    return None if v is None else v.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)


def statements(agg: Execution, events: list[ev.Event], execution_row_update: bool = True) -> list[Statement]:
    """The projection writes for ``events``, already folded into ``agg``. With
    ``execution_row_update=False`` the ``executions`` UPDATE is left to the caller (the writer
    coalesces it: one row per aggregate per transaction)."""
    out: list[Statement] = []
    if isinstance(events[0], ev.ExecutionSubmitted):
        out.append((_EXECUTION_INSERT, execution_row(agg)))
    elif execution_row_update:
        out.append(update_executions(agg)[0])
    for e in events:
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            out.extend(handler(agg, e))
    return out


_EXECUTION_INSERT = bulk(insert(t.executions))
_EXECUTION_UPDATE = bulk(update(t.executions).where(t.executions.c.execution_id == bindparam("_execution_id")))


_STATE_INDEXES = range(len(STATE_COLUMNS))


def update_executions(agg: Execution, previous: tuple[Any, ...] | None = None
                      ) -> tuple[Statement, tuple[Any, ...]]:
    """The ``executions`` row UPDATE of one aggregate, and the ``state_columns`` it writes.
    With those last written (``previous``) only the changed columns are set: updates that
    change the same columns share one statement shape and go to the database as one executemany."""
    now = state_columns(agg, previous)
    if previous is None:
        changed = dict(zip(STATE_COLUMNS, now))
    else:
        # the columns whose objects differ (found in C), then those whose values differ
        changed = {STATE_COLUMNS[i]: now[i] for i in compress(_STATE_INDEXES, map(is_not, now, previous))
                   if now[i] != previous[i]}
    return (_EXECUTION_UPDATE, {"_execution_id": agg.execution_id, **changed}), now


def execute(conn: Connection, planned: list[Statement], memo: dict[int, dict[int, Any]] | None = None) -> None:
    """Run ``planned`` in order on ``conn``. ``memo``: see ``bulk.driver_rows``."""
    for sql, params in driver_statements(conn.dialect, planned, memo):
        conn.exec_driver_sql(sql, params)


def driver_statements(dialect: Dialect, planned: list[Statement],
                      memo: dict[int, dict[int, Any]] | None = None) -> list[tuple[str, list[Any]]]:
    """``planned`` as SQL for ``dialect`` with DBAPI parameters, in order (``grouped``). Every
    statement must be registered with ``bulk``."""
    memo = {} if memo is None else memo
    return [driver_rows(dialect, stmt, rows, memo) for stmt, rows in grouped(planned)]


def grouped(planned: list[Statement]) -> Iterator[tuple[Executable, list[dict[str, Any]]]]:
    """``planned`` in order, consecutive statements of the same shape (same statement, same
    parameter names) together: each group is one executemany."""
    i = 0
    while i < len(planned):
        stmt, params = planned[i]
        j = i + 1
        if isinstance(params, list):
            run = params
        else:
            run = [params]
            while j < len(planned) and planned[j][0] is stmt and isinstance(planned[j][1], dict) \
                    and planned[j][1].keys() == params.keys():
                run.append(planned[j][1])  # type: ignore[arg-type]
                j += 1
        yield stmt, run
        i = j


# Statements are built once; rows differ only in their parameters (cheap, and executemany-able).
_SLICE_UPDATE = bulk(update(t.execution_slices).where(
    (t.execution_slices.c.execution_id == bindparam("_execution_id"))
    & (t.execution_slices.c.slice_index == bindparam("_slice_index"))))
_ORDER_UPDATE = bulk(update(t.child_orders).where(t.child_orders.c.client_order_id == bindparam("_client_order_id")))
_SLICE_INSERT = bulk(insert(t.execution_slices))
_ORDER_INSERT = bulk(insert(t.child_orders))
_FILL_INSERT = bulk(insert(t.fills))


def _slice_upsert(dialect_insert: Any) -> Executable:
    """A slice row inserted as planned, or (it exists) its schedule and planned quantity updated."""
    stmt = dialect_insert(t.execution_slices)
    return stmt.on_conflict_do_update(
        index_elements=[t.execution_slices.c.execution_id, t.execution_slices.c.slice_index],
        set_={"scheduled_at": stmt.excluded.scheduled_at, "planned_qty": stmt.excluded.planned_qty})


_SLICE_UPSERT = bulk(_slice_upsert(sqlite.insert), postgresql=_slice_upsert(postgresql.insert))


def _slice(agg: Execution, index: int, **values: Any) -> Statement:
    return _SLICE_UPDATE, {"_execution_id": agg.execution_id, "_slice_index": index, **values}


def _order(client_order_id: str, **values: Any) -> Statement:
    return _ORDER_UPDATE, {"_client_order_id": client_order_id, **values}


def _planned_rows(agg: Execution, slices: tuple[ev.PlannedSlice, ...]) -> list[dict[str, Any]]:
    return [{
        "execution_id": agg.execution_id, "slice_index": p.index, "scheduled_at": p.scheduled_at,
        "planned_qty": p.qty, "status": "planned", "filled_qty": ZERO, "fee": ZERO, "attempts": 0,
    } for p in slices]


def _started(agg: Execution, e: ev.ExecutionStarted) -> Iterator[Statement]:
    rows = _planned_rows(agg, e.slices)
    if rows:
        yield (_SLICE_INSERT, rows)


def _replanned(agg: Execution, e: ev.ScheduleReplanned) -> Iterator[Statement]:
    """Re-planned slices: existing rows get the new schedule, new indices (a continuation
    after an early completion) get their row."""
    rows = _planned_rows(agg, e.slices)
    if rows:
        yield (_SLICE_UPSERT, rows)


def _risk_denied(agg: Execution, e: ev.RiskDenied) -> Iterator[Statement]:
    yield _slice(agg, e.slice_index, risk_reason=e.reason, reference_price=e.reference_price)


def _intended(agg: Execution, e: ev.OrderIntended) -> Iterator[Statement]:
    yield (_ORDER_INSERT, {
        "client_order_id": e.client_order_id, "execution_id": agg.execution_id,
        "slice_index": e.slice_index, "attempt": e.attempt, "order_type": e.order_type,
        "time_in_force": e.time_in_force, "qty": e.qty, "limit_price": e.limit_price,
        "reference_price": e.reference_price, "status": OrderStatus.INTENDED.value, "filled_qty": ZERO,
        "intended_at": e.occurred_at,
    })
    yield _slice(agg, e.slice_index, status="sent", client_order_id=e.client_order_id,
                 attempts=agg.attempts_for(e.slice_index))


def _acknowledged(agg: Execution, e: ev.OrderAcknowledged) -> Iterator[Statement]:
    yield _order(e.client_order_id, venue_order_id=e.venue_order_id, status=agg.orders[e.client_order_id].status.value)


def _fill(agg: Execution, e: ev.FillRecorded) -> Iterator[Statement]:
    yield (_FILL_INSERT, {
        "execution_id": agg.execution_id, "trade_id": e.trade_id, "client_order_id": e.client_order_id,
        "slice_index": e.slice_index, "qty": e.qty, "price": e.price, "fee": e.fee,
        "fee_asset": e.fee_asset, "liquidity": e.liquidity, "filled_at": e.filled_at,
    })
    yield _order(e.client_order_id, filled_qty=agg.orders[e.client_order_id].filled_qty)


def _closed(agg: Execution, e: ev.OrderClosed) -> Iterator[Statement]:
    yield _order(e.client_order_id, status=e.status, reason=e.reason, closed_at=e.occurred_at)


def _slice_executed(agg: Execution, e: ev.TwapSliceExecuted) -> Iterator[Statement]:
    yield (_SLICE_UPDATE, {
        "_execution_id": agg.execution_id, "_slice_index": e.slice_index, "status": e.status, "executed_at": e.occurred_at, "filled_qty": e.filled_qty,
        "avg_price": _q8(e.avg_price), "reference_price": e.reference_price,
        "slippage_bps": e.slippage_bps, "fee": e.fee, "forecast_volume": e.forecast_volume,
        "forecast_participation": e.forecast_participation, "reason": e.reason, "maker_qty": e.maker_qty,
        "taker_qty": e.taker_qty, "cap_bound": e.cap_bound, "volume_anomaly": e.volume_anomaly,
        "market_vwap": e.market_vwap, "urgency": getattr(e, "urgency", None), "cap_overridden": e.cap_overridden,
        "interval_start": e.interval_start, "interval_end": e.interval_end,
    })


def _measured(agg: Execution, e: ev.SliceParticipationMeasured) -> Iterator[Statement]:
    yield _slice(agg, e.slice_index, market_volume=e.market_volume, participation=e.participation)


def _completed(agg: Execution, e: ev.TwapCompleted) -> Iterator[Statement]:
    """The slices still open when the execution ended, closed by it (one statement)."""
    status = ev.SLICE_NOT_NEEDED if e.reason == "filled" else ev.SLICE_EXPIRED
    rows = [{"_execution_id": agg.execution_id, "_slice_index": i, "status": status}
            for i, s in agg.slices.items() if s.status == status]
    if rows:
        yield (_SLICE_UPDATE, rows)


_HANDLERS = {
    ev.ExecutionStarted: _started,
    ev.ScheduleReplanned: _replanned,
    ev.RiskDenied: _risk_denied,
    ev.OrderIntended: _intended,
    ev.OrderAcknowledged: _acknowledged,
    ev.FillRecorded: _fill,
    ev.OrderClosed: _closed,
    ev.TwapSliceExecuted: _slice_executed,
    ev.VwapSliceExecuted: _slice_executed,
    ev.SliceParticipationMeasured: _measured,
    ev.TwapCompleted: _completed,
    ev.VwapCompleted: _completed,
}


def rebuild_sync(conn: Connection, batch_size: int = 5000) -> int:
    """Empty the projection tables and replay every event through ``statements``. Returns
    the number of events replayed. Runs in the caller's transaction."""
    for table in t.PROJECTION_TABLES:
        conn.execute(delete(table))
    aggregates: dict[str, Execution] = {}
    count = 0
    last_seq = 0
    while True:
        rows = conn.execute(
            select(t.events.c.sequence_number, t.events.c.event_type, t.events.c.aggregate_id,
                   t.events.c.event_data)
            .where(t.events.c.sequence_number > last_seq)
            .order_by(t.events.c.sequence_number).limit(batch_size)
        ).all()
        if not rows:
            return count
        for seq, etype, agg_id, data in rows:
            event = decode(etype, data)
            agg = aggregates.setdefault(agg_id, Execution(agg_id))
            agg.apply(event)
            execute(conn, statements(agg, [event]))
            last_seq = seq
            count += 1


async def rebuild(conn: AsyncConnection, batch_size: int = 5000) -> int:
    """``rebuild_sync`` on an async connection."""
    return await conn.run_sync(rebuild_sync, batch_size)
