"""Per-slice figures read off the engine's tables and the paper exchange's own: lateness (maker
wait excluded), request weight per exchange minute, realised participation on the exchange's tape.

Definitions (docs/performance.md, "Request weight per slice: REST against streams"):

* **slice lateness**: exchange seconds from a slice's ``scheduled_at`` to the moment the
  exchange received the slice's first child order (``orders.created_ms`` of the earliest order
  whose client order id the engine recorded for that slice). The maker leg's wait comes after
  that first order, so it is excluded. Slices that sent no order are counted apart.
* **decision lateness**: ``scheduled_at`` to the first child order's ``intended_at`` (the
  intent's time, stamped before it is appended; the order is sent once it is durable): the
  engine's reads and sizing. **Intent to received**: every order's ``intended_at`` to the
  exchange receiving it (the durable append, the account's order budget, ccxt's throttle, HTTP).
* **lateness past the cap's room**: exchange seconds from the later of ``scheduled_at`` and the
  moment the exchange's tape (seed 0) had traded enough since the slice's ``interval_start``
  for the cap to allow the slice's first child order (``qty / cap``) to the exchange receiving
  it: slice lateness without the time the participation cap legitimately waits for the market.
  The engine sees the tape through its trade stream, so the stream's delivery lag counts here.
* **realised participation**: what the exchange filled of a slice's orders (its ``trades``
  table) over the volume its public tape (``genesis.paper.tape.minute_trades``, the trades it
  streams, seed 0) traded in the slice's interval ``[interval_start, interval_end)``; slices
  whose cap was overridden (emergency) are left out. **Account participation**: everything the
  exchange filled for the account in a tape minute over that minute's tape volume.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from genesis.paper.limits import request_weight
from genesis.paper.tape import MINUTE_MS, minute_trades
from genesis.venue.candles import from_epoch_ms, shipped_candles, to_epoch_ms
from genesis.venue.instruments import SIM_INSTRUMENTS

# a request's parameters are not in the exchange's audit: price each endpoint as the venue calls it
PARAMS = {"/api/v3/depth": {"symbol": "X", "limit": "5"},
          "/api/v3/myTrades": {"symbol": "X", "orderId": "1"},
          "/api/v3/ticker/24hr": {"symbols": "[X]"}}
WEIGHT_LIMIT = 6000


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``, rounded to 2 places."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None


def lateness(slices: Iterable[tuple[str, int, datetime]],
             children: Iterable[tuple[str, str, int, datetime]],
             received_ms: dict[str, int]) -> dict[str, Any]:
    """``slices``: (execution id, index, scheduled_at); ``children``: (client order id,
    execution id, slice index, intended_at); ``received_ms``: client order id -> the
    exchange's ``created_ms``. Slice and decision lateness quantiles (module docstring)."""
    first_sent: dict[tuple[str, int], int] = {}
    first_intent: dict[tuple[str, int], datetime] = {}
    in_flight = []  # every order: its durable intent to the exchange receiving it
    for cid, eid, index, intended in children:
        key = (eid, index)
        if cid in received_ms:
            in_flight.append((received_ms[cid] - to_epoch_ms(intended)) / 1000)
            first_sent[key] = min(first_sent.get(key, received_ms[cid]), received_ms[cid])
        first_intent[key] = min(first_intent.get(key, intended), intended)
    sent, decided, silent = [], [], 0
    by_index: dict[int, list[float]] = defaultdict(list)
    for eid, index, due in slices:
        key = (eid, index)
        if key not in first_sent:
            silent += 1
            continue
        sent.append((first_sent[key] - to_epoch_ms(due)) / 1000)
        decided.append((first_intent[key] - due).total_seconds())
        by_index[index].append(sent[-1])
    return {"slice_lateness_p99_s_by_slice_index": {i: pct(v, 0.99) for i, v in sorted(by_index.items())},
            "slices_with_orders": len(sent), "slices_without_orders": silent,
            "slice_lateness_p50_s": pct(sent, 0.5), "slice_lateness_p99_s": pct(sent, 0.99),
            "slice_lateness_max_s": pct(sent, 1.0),
            "decision_lateness_p50_s": pct(decided, 0.5), "decision_lateness_p99_s": pct(decided, 0.99),
            "intent_to_received_p50_s": pct(in_flight, 0.5), "intent_to_received_p99_s": pct(in_flight, 0.99)}


def past_cap_room(tape: "Tape", cap: Decimal, slices: Iterable[tuple[str, int, datetime, datetime | None]],
                  children: Iterable[tuple[str, str, int, Decimal]], received_ms: dict[str, int]) -> dict[str, Any]:
    """``slices``: (execution id, index, scheduled_at, interval_start); ``children``: (client
    order id, execution id, slice index, qty). Lateness past the cap's room (module docstring)
    and the time the cap waited for the market, quantiles."""
    first: dict[tuple[str, int], tuple[int, Decimal]] = {}
    for cid, eid, index, qty in children:
        if cid in received_ms and ((eid, index) not in first or received_ms[cid] < first[(eid, index)][0]):
            first[(eid, index)] = (received_ms[cid], Decimal(qty))
    past, waited = [], []
    for eid, index, due, start in slices:
        if (eid, index) not in first or start is None:
            continue
        sent_ms, qty = first[(eid, index)]
        due_ms = to_epoch_ms(due)
        room_ms = tape.room_at(to_epoch_ms(start), qty / cap, sent_ms)
        ready_ms = max(due_ms, room_ms if room_ms is not None else sent_ms)
        past.append((sent_ms - ready_ms) / 1000)
        waited.append((ready_ms - due_ms) / 1000)
    return {"lateness_past_cap_room_p50_s": pct(past, 0.5), "lateness_past_cap_room_p99_s": pct(past, 0.99),
            "cap_room_wait_p50_s": pct(waited, 0.5), "cap_room_wait_p99_s": pct(waited, 0.99)}


def weight_by_minute(requests: Iterable[tuple[int | None, str, str, int]]) -> dict[str, Any]:
    """``requests``: (sim_ms, method, path, http status) of the exchange's audit. Weight per
    exchange minute (peak and mean share of ``WEIGHT_LIMIT``), 429/418 received, per endpoint."""
    per_minute: Counter[int] = Counter()
    per_endpoint: Counter[str] = Counter()
    refused = 0
    for sim_ms, method, path, status in requests:
        weight = request_weight(method, path, PARAMS.get(path, {"symbol": "X"}))
        per_minute[(sim_ms or 0) // MINUTE_MS] += weight
        per_endpoint[f"{method} {path}"] += weight
        refused += status in (429, 418)
    busy = sorted(per_minute.values())
    return {"http_429_or_418": refused, "weight_total": sum(busy),
            "weight_peak_minute_share": round(busy[-1] / WEIGHT_LIMIT, 4) if busy else 0.0,
            "weight_mean_minute_share": round(sum(busy) / len(busy) / WEIGHT_LIMIT, 4) if busy else 0.0,
            "weight_by_endpoint": dict(sorted(per_endpoint.items()))}


class Tape:
    """Volume of the paper exchange's public tape (``minute_trades`` of its shipped candles)."""

    def __init__(self, symbol: str, seed: int = 0):
        self.series, self.inst, self.seed = shipped_candles(symbol), SIM_INSTRUMENTS[symbol], seed
        self._minutes: dict[int, list[tuple[int, Decimal]]] = {}

    def minute(self, open_ms: int) -> list[tuple[int, Decimal]]:
        if open_ms not in self._minutes:
            candle = self.series.candle_at(from_epoch_ms(open_ms))
            self._minutes[open_ms] = ([(t.time_ms, t.qty) for t in minute_trades(candle, self.inst, self.seed)]
                                      if candle else [])
        return self._minutes[open_ms]

    def room_at(self, start_ms: int, needed: Decimal, until_ms: int) -> int | None:
        """When the tape, from ``start_ms``, had traded ``needed`` (None: not by ``until_ms``)."""
        total, m = Decimal(0), start_ms // MINUTE_MS * MINUTE_MS
        while m <= until_ms:
            for t, q in self.minute(m):
                if start_ms <= t <= until_ms:
                    total += q
                    if total >= needed:
                        return t
            m += MINUTE_MS
        return None

    def volume(self, start_ms: int, end_ms: int) -> Decimal:
        total, m = Decimal(0), start_ms // MINUTE_MS * MINUTE_MS
        while m < end_ms:
            total += sum((q for t, q in self.minute(m) if start_ms <= t < end_ms), Decimal(0))
            m += MINUTE_MS
        return total


def participation(tape: Tape, slices: Iterable[tuple[str, int, datetime | None, datetime | None, bool]],
                  children: Iterable[tuple[str, str, int, datetime]],
                  exchange: sqlite3.Connection) -> dict[str, Any]:
    """Realised participation per slice and per account minute on the exchange's tape."""
    filled_by_cid: dict[str, Decimal] = defaultdict(Decimal)
    by_minute: dict[int, Decimal] = defaultdict(Decimal)
    for cid, qty, time_ms in exchange.execute(
            "SELECT o.client_order_id, t.qty, t.time_ms FROM trades t JOIN orders o USING (order_id)"):
        filled_by_cid[cid] += Decimal(qty)
        by_minute[time_ms // MINUTE_MS * MINUTE_MS] += Decimal(qty)
    filled: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for cid, eid, index, _ in children:
        filled[(eid, index)] += filled_by_cid.get(cid, Decimal(0))
    worst, measured = Decimal(0), 0
    for eid, index, start, end, overridden in slices:
        if overridden or start is None or end is None:
            continue
        volume = tape.volume(to_epoch_ms(start), to_epoch_ms(end))
        if volume > 0:
            measured += 1
            worst = max(worst, filled[(eid, index)] / volume)
    account = [qty / v for m, qty in by_minute.items() if (v := tape.volume(m, m + MINUTE_MS)) > 0]
    return {"slices_measured": measured, "max_slice_participation": round(float(worst), 6),
            "max_account_minute_participation": round(float(max(account, default=0)), 4)}
