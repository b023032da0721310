"""The paper exchange's own SQLite file: orders, trades, balances, a request audit log.

Plain ``sqlite3``, WAL journal, one transaction per API request, schema created at start.
Money is stored as decimal text. The file is the exchange's truth across restarts; the
in-memory simulated venue is rebuilt from it (``genesis.paper.exchange``).

Tables::

    meta(key PRIMARY KEY, value)                  sim_now_ms, credentials, schema version
    orders(order_id PK, client_order_id UNIQUE, symbol, side, type, time_in_force, price,
           orig_qty, executed_qty, cumm_quote_qty, status, created_ms, updated_ms)

A client order id taken again after its order filled (as Binance allows) is stored as
``<id>#<order id>`` (``#`` is outside Binance's id alphabet): the stored id stays unique (it
keys the simulator's order too); the API shows ``public_client_id``.
    trades(trade_id PK, order_id, symbol, side, price, qty, quote_qty, commission,
           commission_asset, is_maker, time_ms)
    balances(asset PK, total)
    requests(id PK, wall_ms, sim_ms, method, path, client_order_id, http_status,
             error_code, fault)
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator
from genesis.store.migrate import create_private_file

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    price TEXT NOT NULL,
    orig_qty TEXT NOT NULL,
    executed_qty TEXT NOT NULL,
    cumm_quote_qty TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (status);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    quote_qty TEXT NOT NULL,
    commission TEXT NOT NULL,
    commission_asset TEXT NOT NULL,
    is_maker INTEGER NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_order ON trades (order_id);
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, total TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    wall_ms INTEGER NOT NULL,
    sim_ms INTEGER,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    client_order_id TEXT,
    http_status INTEGER NOT NULL,
    error_code INTEGER,
    fault TEXT
);
"""
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
REUSE_MARK = "#"  # <client order id>#<order id>: an id sent again after its order filled


@dataclass(slots=True)
class OrderRow:
    """One Binance order as stored (decimal fields as ``Decimal``)."""

    order_id: int
    client_order_id: str
    symbol: str  # unified, BTC/USDT
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET / LIMIT_MAKER
    time_in_force: str  # GTC / IOC ("GTC" for MARKET and LIMIT_MAKER, as Binance reports)
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cumm_quote_qty: Decimal
    status: str  # NEW / PARTIALLY_FILLED / FILLED / CANCELED / EXPIRED
    created_ms: int
    updated_ms: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def public_client_id(self) -> str:
        """The client order id as sent and shown (the stored one less a reuse's ``#<order id>``)."""
        return self.client_order_id.split(REUSE_MARK, 1)[0]


@dataclass(frozen=True, slots=True)
class TradeRow:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


_ORDER_COLS = ("order_id, client_order_id, symbol, side, type, time_in_force, price, orig_qty, "
               "executed_qty, cumm_quote_qty, status, created_ms, updated_ms")
_TRADE_COLS = ("trade_id, order_id, symbol, side, price, qty, quote_qty, commission, "
               "commission_asset, is_maker, time_ms")


class PaperStore:
    """Synchronous access to the paper exchange's SQLite file (called from one event loop)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(self.path)  # it holds the API key and secret: mode 0600
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``with store.transaction():`` one write transaction, rolled back on error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                        "value = excluded.value", (key, value))

    # -- balances --------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        return {a: Decimal(t) for a, t in self.db.execute("SELECT asset, total FROM balances")}

    def save_balances(self, balances: dict[str, Decimal]) -> None:
        self.db.executemany("INSERT INTO balances VALUES (?, ?) ON CONFLICT (asset) DO UPDATE "
                            "SET total = excluded.total", [(a, str(v)) for a, v in balances.items()])

    # -- orders ----------------------------------------------------------------------------
    def next_order_id(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(order_id), 0) FROM orders").fetchone()
        return int(row[0]) + 1

    def insert_order(self, o: OrderRow) -> None:
        self.db.execute(f"INSERT INTO orders ({_ORDER_COLS}) VALUES ({', '.join('?' * 13)})",
                        _order_values(o))

    def update_order(self, o: OrderRow) -> None:
        self.db.execute("UPDATE orders SET executed_qty = ?, cumm_quote_qty = ?, status = ?, "
                        "updated_ms = ? WHERE order_id = ?",
                        (str(o.executed_qty), str(o.cumm_quote_qty), o.status, o.updated_ms,
                         o.order_id))

    def order_by_client_id(self, client_order_id: str) -> OrderRow | None:
        return self._one_order("client_order_id = ?", client_order_id)

    def latest_by_client_id(self, client_order_id: str) -> OrderRow | None:
        """The latest order sent under ``client_order_id`` (its first order, or a reuse)."""
        reuses = client_order_id + REUSE_MARK  # "<id>#<order id>": the range [<id>#, <id>$)
        row = self.db.execute(f"SELECT {_ORDER_COLS} FROM orders WHERE client_order_id = ? OR "
                              f"(client_order_id >= ? AND client_order_id < ?) ORDER BY order_id DESC LIMIT 1",
                              (client_order_id, reuses,
                               client_order_id + chr(ord(REUSE_MARK) + 1))).fetchone()
        return None if row is None else _order(row)

    def order_by_id(self, order_id: int) -> OrderRow | None:
        return self._one_order("order_id = ?", order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderRow]:
        rows = self.db.execute(f"SELECT {_ORDER_COLS} FROM orders WHERE status IN (?, ?) "
                               f"ORDER BY order_id", OPEN_STATUSES).fetchall()
        orders = [_order(r) for r in rows]
        return [o for o in orders if symbol in (None, o.symbol)]

    def all_orders(self) -> list[OrderRow]:
        rows = self.db.execute(f"SELECT {_ORDER_COLS} FROM orders ORDER BY order_id").fetchall()
        return [_order(r) for r in rows]

    def _one_order(self, where: str, value: object) -> OrderRow | None:
        row = self.db.execute(f"SELECT {_ORDER_COLS} FROM orders WHERE {where}", (value,)).fetchone()
        return None if row is None else _order(row)

    # -- trades ----------------------------------------------------------------------------
    def insert_trade(self, t: TradeRow) -> None:
        self.db.execute(f"INSERT INTO trades ({_TRADE_COLS}) VALUES ({', '.join('?' * 11)})",
                        (t.trade_id, t.order_id, t.symbol, t.side, str(t.price), str(t.qty),
                         str(t.quote_qty), str(t.commission), t.commission_asset,
                         int(t.is_maker), t.time_ms))

    def next_trade_id(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(trade_id), 0) FROM trades").fetchone()
        return int(row[0]) + 1

    def trades(self, symbol: str, order_id: int | None = None, from_id: int | None = None,
               start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> list[TradeRow]:
        where, args = ["symbol = ?"], [symbol]
        for clause, value in (("order_id = ?", order_id), ("trade_id >= ?", from_id),
                              ("time_ms >= ?", start_ms), ("time_ms <= ?", end_ms)):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self.db.execute(f"SELECT {_TRADE_COLS} FROM trades WHERE {' AND '.join(where)} "
                               f"ORDER BY trade_id LIMIT ?", (*args, limit)).fetchall()
        return [_trade(r) for r in rows]

    def trades_of_orders(self, order_ids: Iterable[int]) -> dict[int, list[TradeRow]]:
        ids = list(order_ids)
        out: dict[int, list[TradeRow]] = {i: [] for i in ids}
        if ids:
            rows = self.db.execute(f"SELECT {_TRADE_COLS} FROM trades WHERE order_id IN "
                                   f"({', '.join('?' * len(ids))}) ORDER BY trade_id", ids)
            for r in rows:
                out[r[1]].append(_trade(r))
        return out

    # -- audit -----------------------------------------------------------------------------
    def log_request(self, wall_ms: int, sim_ms: int | None, method: str, path: str,
                    client_order_id: str | None, http_status: int, error_code: int | None,
                    fault: str | None) -> None:
        self.db.execute("INSERT INTO requests (wall_ms, sim_ms, method, path, client_order_id, "
                        "http_status, error_code, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (wall_ms, sim_ms, method, path, client_order_id, http_status, error_code,
                         fault))


def _order_values(o: OrderRow) -> tuple[object, ...]:
    return (o.order_id, o.client_order_id, o.symbol, o.side, o.type, o.time_in_force, str(o.price),
            str(o.orig_qty), str(o.executed_qty), str(o.cumm_quote_qty), o.status, o.created_ms,
            o.updated_ms)


def _order(r: tuple) -> OrderRow:  # type: ignore[type-arg]
    return OrderRow(r[0], r[1], r[2], r[3], r[4], r[5], Decimal(r[6]), Decimal(r[7]),
                    Decimal(r[8]), Decimal(r[9]), r[10], r[11], r[12])


def _trade(r: tuple) -> TradeRow:  # type: ignore[type-arg]
    return TradeRow(r[0], r[1], r[2], r[3], Decimal(r[4]), Decimal(r[5]), Decimal(r[6]),
                    Decimal(r[7]), r[8], bool(r[9]), r[10])
