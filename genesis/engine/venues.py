"""Building the venue the daemon trades on: the embedded simulator or an exchange through ccxt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from genesis.clock import Clock, WallClock
from genesis.config import RuntimeConfig
from genesis.venue.base import PermanentVenueError, Venue


class VenueSetupError(Exception):
    """The venue cannot be built (missing or unsafe credentials, unknown exchange...)."""


def default_sim_start() -> datetime:
    from genesis.venue.candles import shipped_candles, shipped_symbols

    first = max(shipped_candles(s).first_open_time for s in shipped_symbols())
    return first + timedelta(days=20)


def build_sim_venue(clock: Clock, config: RuntimeConfig) -> Venue:
    from genesis.venue.candles import shipped_candles, shipped_symbols
    from genesis.venue.instruments import SIM_INSTRUMENTS
    from genesis.venue.sim import FillModel, SimulatedVenue

    sim = config.sim
    model = FillModel(half_spread_bps=sim.half_spread_bps, impact_coefficient_bps=sim.impact_coefficient_bps,
                      limit_fill_share=sim.limit_fill_share)
    series = {s: shipped_candles(s) for s in shipped_symbols()}
    return SimulatedVenue(clock, series, SIM_INSTRUMENTS, fill_model=model, balances=dict(sim.balances),
                          seed=sim.seed)


def build_ccxt_venue(exchange_id: str, exchange_url: str | None, clock: Clock, streams: bool = False,
                     config: RuntimeConfig | None = None, may_send: Callable[[], bool] | None = None) -> Venue:
    """The ccxt venue; ``streams``: the streaming one (``StreamingCcxtVenue``, one market-data hub).
    ``config.ccxt``: the traded volume's memory and REST budget, the streams' settings, the
    account's order budget (``order_budget``). On the wall clock (a real exchange) ccxt measures
    the exchange's time difference at every ``load_markets`` (``adjustForTimeDifference``): the
    order budget's windows are on the exchange's clock (``genesis.venue.exchange_clock``).
    Order requests carry ``config.ccxt.recv_window_ms``; ``may_send``: whether the daemon still
    holds its account lease (checked as each order is stamped, ``genesis.venue.send_fence``)."""
    from genesis.venue.budget_settings import BudgetSettings
    from genesis.venue.ccxt_rest_volume import TradedVolumeCcxtVenue
    from genesis.venue.ccxt_stream import StreamingCcxtVenue
    from genesis.venue.ccxt_venue import CcxtVenue
    from genesis.venue.stream_feeds import Backoff
    from genesis.venue.credentials import CredentialsError, load_credentials
    from genesis.venue.send_fence import SendWindow

    try:
        credentials = load_credentials(exchange_id)
    except CredentialsError as exc:
        raise VenueSetupError(str(exc)) from None
    if credentials is None:
        raise VenueSetupError(f"no API credentials for {exchange_id}: set GENESIS_API_KEY and GENESIS_API_SECRET "
                          f"(or GENESIS_CREDENTIALS_FILE, a mode-0600 file)")
    settings = (config or RuntimeConfig()).ccxt
    try:
        # a paper exchange's clock runs --speed times faster: so do its rate limits
        common: dict[str, Any] = {"credentials": credentials, "exchange_url": exchange_url, "clock": clock,
                                  "time_scale": getattr(clock, "speed", 1.0),
                                  "budget_settings": BudgetSettings(**settings.order_budget.model_dump()),
                                  "send_window": SendWindow(settings.recv_window_ms, settings.resend_clock_margin_ms),
                                  "may_send": may_send}
        if type(clock) is WallClock:  # the exchange's time, measured (a paper clock already is)
            common["options"] = {"adjustForTimeDifference": True}
        venue: StreamingCcxtVenue | TradedVolumeCcxtVenue
        if streams:
            s = settings.streams
            venue = StreamingCcxtVenue(
                exchange_id, unavailable_after_seconds=s.unavailable_after_seconds,
                fill_wait_seconds=s.fill_wait_seconds, stall_after_seconds=s.stall_after_seconds.model_dump(),
                backoff=Backoff(s.reconnect_base_seconds, s.reconnect_max_seconds), **common)
        elif settings.rest_traded_volume:
            venue = TradedVolumeCcxtVenue(exchange_id, **common)
        else:
            return _shown_limits(CcxtVenue(exchange_id, **common), settings.order_budget.daily_limit)
    except PermanentVenueError as exc:
        raise VenueSetupError(str(exc)) from None
    _shown_limits(venue, settings.order_budget.daily_limit)
    venue.volumes.keep_seconds = settings.traded_volume_keep_seconds
    venue.volumes.rest_pages = settings.traded_volume_rest_pages
    return venue


def _shown_limits(venue: Any, daily_limit: int) -> Any:
    """The account's daily order limit as configured, for ``genesis status`` and the metrics."""
    venue.weight.order_limit_1d = daily_limit
    return venue
