"""The config sections of the services around trading: the store, the account leases,
logging, alerts and the ccxt venue's REST and stream settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from genesis.config.strict import _finite, _Strict


class StoreConfig(_Strict):
    """``store.db``: the database, a SQLite file path or a ``postgresql+psycopg://`` URL.
    ``--db`` wins over ``$GENESIS_DB``, which wins over this; without any, ``./genesis.db``."""

    db: str | None = None

    @field_validator("db")
    @classmethod
    def _a_database(cls, v: str | None) -> str | None:
        if v is not None:
            from genesis.store.location import DbLocationError, parse_db

            try:
                parse_db(v, source="the value")
            except DbLocationError as exc:
                raise ValueError(str(exc)) from None
        return v


class LeasesConfig(_Strict):
    """``leases``: the venue account leases ``genesis run`` holds (docs/ha.md). ``accounts``
    ([]: the venue's own account) and ``lease_seconds``; ``--accounts`` and
    ``--lease-seconds`` win over them."""

    accounts: list[str] = Field(default_factory=list)
    lease_seconds: float = Field(15.0, ge=1, le=86_400)

    @field_validator("accounts")
    @classmethod
    def _named(cls, v: list[str]) -> list[str]:
        names = [a.strip() for a in v]
        if any(not a for a in names):
            raise ValueError("an account name is empty")
        return names


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"


class AlertsConfig(_Strict):
    """``alerts``: notifications through Apprise URLs (docs/operations.md). Off while ``urls`` is empty."""

    urls: tuple[str, ...] = ()
    dedupe_window_seconds: float = Field(300.0, gt=0, le=86_400)
    max_per_minute: int = Field(20, ge=1, le=10_000)
    risk_denial_burst_count: int = Field(10, ge=2, le=100_000)
    risk_denial_burst_seconds: float = Field(60.0, gt=0, le=86_400)
    venue_down_after_errors: int = Field(3, ge=1, le=10_000)
    send_timeout_seconds: float = Field(10.0, gt=0, le=300)
    queue_size: int = Field(1000, ge=1, le=1_000_000)

    _fin = field_validator("dedupe_window_seconds", "risk_denial_burst_seconds", "send_timeout_seconds")(_finite)

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, url in enumerate(v):
            if "://" not in url:
                raise ValueError(f"entry {i} is not a URL (expected scheme://..., e.g. tgram://TOKEN/CHAT_ID, "
                                 f"slack://..., mailto://..., json://host/path)")
        return v


class StallConfig(_Strict):
    """``ccxt.streams.stall_after_seconds``: an open market stream that sends nothing for this
    long (exchange seconds) is treated as down: closed, reconnected with backoff, REST meanwhile.
    Tied to each stream's cadence on Binance: trades and book tops come many times a second on
    a liquid symbol, a 1-minute kline at least every 2 s."""

    book: float = Field(60.0, gt=0, le=3600)
    trade: float = Field(30.0, gt=0, le=3600)
    kline: float = Field(10.0, gt=0, le=3600)

    _fin = field_validator("book", "trade", "kline")(_finite)


class StreamsConfig(_Strict):
    """``ccxt.streams``: the WebSocket streams of ``genesis run --venue ccxt:<id> --streams``."""

    stall_after_seconds: StallConfig = StallConfig()
    unavailable_after_seconds: float = Field(60.0, gt=0, le=3600)
    fill_wait_seconds: float = Field(3.0, gt=0, le=120)
    reconnect_base_seconds: float = Field(0.5, gt=0, le=60)
    reconnect_max_seconds: float = Field(30.0, gt=0, le=600)

    _fin = field_validator("unavailable_after_seconds", "fill_wait_seconds", "reconnect_base_seconds",
                           "reconnect_max_seconds")(_finite)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> "StreamsConfig":
        if self.reconnect_base_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_base_seconds must be <= reconnect_max_seconds")
        return self


class OrderBudgetConfig(_Strict):
    """``ccxt.order_budget``: the account's new orders (docs/ccxt.md, "The order budget"): at
    most ``limit`` per fixed ``window_seconds`` window of the exchange's clock (Binance spot: 100
    per 10 s, some accounts 50), ``following_share`` of a window paced for following orders,
    ``guard_seconds`` of clock error around a boundary; ``daily_limit`` per UTC day (Binance:
    200,000), of which ``daily_margin`` are left unused: at the rest, new orders are refused."""

    limit: int = Field(97, ge=1, le=100_000)
    window_seconds: float = Field(10.0, gt=0, le=86_400)
    following_share: float = Field(0.15, ge=0, le=1)
    guard_seconds: float = Field(0.25, ge=0, le=60)
    daily_limit: int = Field(200_000, ge=1, le=100_000_000)
    daily_margin: int = Field(100, ge=0)

    _fin = field_validator("window_seconds", "following_share", "guard_seconds")(_finite)

    @model_validator(mode="after")
    def _consistent(self) -> "OrderBudgetConfig":
        if not self.guard_seconds < self.window_seconds / 2:
            raise ValueError(f"guard_seconds ({self.guard_seconds}) must be under half of window_seconds "
                             f"({self.window_seconds}): lower guard_seconds (default 0.25)")
        if not self.daily_margin < self.daily_limit:
            raise ValueError(f"daily_margin ({self.daily_margin}) must be under daily_limit "
                             f"({self.daily_limit}): lower daily_margin (default 100)")
        return self


class CcxtConfig(_Strict):
    """``ccxt``: exchanges through ccxt (``--venue ccxt:<id>``; docs/ccxt.md). The traded volume
    the participation cap is held to is kept ``traded_volume_keep_seconds`` and read over REST
    (klines, aggTrades) at most ``traded_volume_rest_pages`` pages per look. Without
    ``--streams`` the cap is held to it only with ``rest_traded_volume`` (else to the forecast).
    Every order request carries ``recv_window_ms`` (Binance's ``recvWindow``, at most 60000): the
    exchange refuses it once that much older than its ``timestamp``; a client order id whose
    outcome is unknown is sent again only after its last request's ``timestamp + recv_window_ms
    + resend_clock_margin_ms`` (the margin: how far the host's reading of the exchange's clock
    may be off; docs/guarantees.md)."""

    rest_traded_volume: bool = False
    recv_window_ms: int = Field(5_000, ge=1, le=60_000)
    resend_clock_margin_ms: int = Field(1_000, ge=0, le=60_000)
    traded_volume_keep_seconds: float = Field(7200.0, ge=600, le=86_400)
    traded_volume_rest_pages: int = Field(5, ge=1, le=100)
    streams: StreamsConfig = StreamsConfig()
    order_budget: OrderBudgetConfig = OrderBudgetConfig()

    _fin = field_validator("traded_volume_keep_seconds")(_finite)
