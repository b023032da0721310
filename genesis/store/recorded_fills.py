"""The fills an account's executions recorded on a symbol, read from the ``fills`` projection:
what the account-wide participation cap (``genesis.engine.account_cap``) starts a ledger from
after a restart or a failover."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.store import tables as t


class RecordedFillsReader:
    """``since(account, symbol, start)``: (when traded, qty, trade id) of each fill from
    ``start`` on, oldest first."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def since(self, account: str, symbol: str, start: datetime) -> list[tuple[datetime, Decimal, str]]:
        f, e = t.fills.c, t.executions.c
        query = (select(f.filled_at, f.qty, f.trade_id)
                 .join(t.executions, e.execution_id == f.execution_id)
                 .where((e.account == account) & (e.symbol == symbol) & (f.filled_at >= start))
                 .order_by(f.filled_at))
        async with self._engine.connect() as conn:
            return [(at, qty, trade_id) for at, qty, trade_id in await conn.execute(query)]
