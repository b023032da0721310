"""``TradedVolumeCcxtVenue``: the REST ``CcxtVenue`` that also reports the volume the market
actually traded (``MeasuresTradedVolume``), so the participation cap is held to it rather than
to the forecast: closed minutes from klines, the rest from ``aggTrades``, kept so each look
reads only what is new (``genesis.venue.volume_reader``). Chosen by ``ccxt.rest_traded_volume:
true`` in the runtime config; it costs a REST round trip (weight 2) per look, about three looks
per capped slice, before each capped leg goes (docs/ccxt.md, "The cap on traded volume")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.volume_reader import VolumeReader


class TradedVolumeCcxtVenue(CcxtVenue):
    """``CcxtVenue`` plus ``traded_volume`` over REST (see module docstring)."""

    def __init__(self, exchange_id: str, **kwargs: Any):
        super().__init__(exchange_id, **kwargs)
        self.volumes = VolumeReader(self)

    async def traded_volume(self, symbol: str, start: datetime, end: datetime) -> Decimal | None:
        """Base volume traded in ``[start, min(end, now))``: a lower bound (``TradeVolume``)."""
        return await self.volumes.traded_volume(symbol, start, end)
