"""The config sections of trading: the engine's pacing, risk limits, the algorithms' windows and
caps, the router, the tier gate and the simulated venue."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from genesis.config.strict import MAX_WINDOW_SECONDS, _finite, _Strict
from genesis.domain.risk import RiskLimits

if TYPE_CHECKING:
    from genesis.domain.twap import TwapParams


class EngineConfig(_Strict):
    command_poll_seconds: float = Field(0.25, gt=0, le=5)
    drain_timeout_seconds: float = Field(10.0, gt=0, le=300)
    venue_retry_seconds: float = Field(1.0, gt=0, le=60)
    max_venue_retries: int = Field(20, ge=1, le=10_000)
    # how long past its deadline an order of unknown outcome is looked up before the execution is
    # held (``order_outcome_unknown``) and a critical alert goes out; the lookups go on after it
    outcome_alarm_seconds: float = Field(120.0, gt=0, le=86_400)


class RiskConfig(_Strict):
    kill_switch: bool = False
    max_parent_notional_usdt: Decimal = Field(Decimal("5000000"), gt=0)
    max_position_base: dict[str, Decimal] = Field(default_factory=dict)
    price_collar_bps: Decimal = Field(Decimal("200"), gt=0, le=10_000)
    # the most one account may take of a symbol's volume traded in each minute, summed over all
    # its executions (genesis.engine.account_cap); None: off (each parent's own cap only)
    account_participation_cap: Decimal | None = None

    _fin = field_validator("max_parent_notional_usdt", "price_collar_bps")(_finite)

    @field_validator("account_participation_cap", mode="before")
    @classmethod
    def _account_cap(cls, v: Any) -> Any:
        if v is None:
            return v
        fix = "set a share of the volume traded, > 0 and <= 1 (e.g. 0.10), or leave it out to turn it off"
        if isinstance(v, bool) or not isinstance(v, (int, float, str, Decimal)):
            raise ValueError(f"must be a number: {fix}")
        try:
            share = Decimal(str(v))
        except ArithmeticError:
            raise ValueError(f"must be a number, got {v!r}: {fix}") from None
        if not share.is_finite() or not 0 < share <= 1:
            raise ValueError(f"must be > 0 and <= 1, got {v}: {fix}")
        return share

    @field_validator("max_position_base")
    @classmethod
    def _positive(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for symbol, limit in v.items():
            if not limit.is_finite() or limit <= 0:
                raise ValueError(f"limit for {symbol} must be a finite number > 0")
        return v

    def limits(self) -> RiskLimits:
        return RiskLimits(self.kill_switch, self.max_parent_notional_usdt,
                          dict(self.max_position_base), self.price_collar_bps)


class TwapAlgoConfig(_Strict):
    min_duration_seconds: int = Field(300, gt=0, le=MAX_WINDOW_SECONDS)
    max_duration_seconds: int = Field(1800, gt=0, le=MAX_WINDOW_SECONDS)
    default_duration_seconds: int = Field(900, gt=0, le=MAX_WINDOW_SECONDS)
    pause_policy: Literal["extend", "compress"] = "extend"
    participation_cap: Decimal = Field(Decimal("0.10"), gt=0, le=1)
    jitter_fraction: float = Field(0.3, ge=0, le=0.9)
    size_variation: Decimal = Field(Decimal("0.2"), ge=0, lt=1)
    early_completion_bps: Decimal = Field(Decimal("20"), ge=0)
    early_interval_seconds: int = Field(10, ge=0, le=86_400)
    anomaly_ratio: float = Field(5.0, gt=1)
    anomaly_participation_factor: Decimal = Field(Decimal("0.5"), gt=0, le=1)
    volume_lookback_days: int = Field(20, ge=1, le=60)

    _fin = field_validator("participation_cap", "size_variation", "early_completion_bps",
                           "anomaly_participation_factor", "jitter_fraction", "anomaly_ratio")(_finite)

    def params(self) -> "TwapParams":
        from genesis.domain.twap import TwapParams

        return TwapParams(self.jitter_fraction, self.size_variation, self.participation_cap,
                          self.early_completion_bps, self.early_interval_seconds, self.anomaly_ratio,
                          self.anomaly_participation_factor)

    @model_validator(mode="after")
    def _bounds(self) -> "TwapAlgoConfig":
        if self.min_duration_seconds > self.max_duration_seconds:
            raise ValueError("min_duration_seconds must be <= max_duration_seconds")
        if not self.min_duration_seconds <= self.default_duration_seconds <= self.max_duration_seconds:
            raise ValueError("default_duration_seconds must lie between min and max")
        return self


class VwapAlgoConfig(_Strict):
    min_duration_seconds: int = Field(300, gt=0, le=MAX_WINDOW_SECONDS)
    max_duration_seconds: int = Field(86_400, gt=0, le=MAX_WINDOW_SECONDS)
    default_duration_seconds: int = Field(14_400, gt=0, le=MAX_WINDOW_SECONDS)
    interval_seconds: int = Field(60, ge=10, le=3600)
    # the allowed lag behind the curve, as a share of the schedule still ahead (a funnel that
    # closes at the window end); measured in docs/execution-quality.md
    behind_tolerance: Decimal = Field(Decimal("0.2"), ge=0, le=1)
    intraday_adjustment: bool = False

    _fin = field_validator("behind_tolerance")(_finite)

    @model_validator(mode="after")
    def _bounds(self) -> "VwapAlgoConfig":
        if not self.min_duration_seconds <= self.default_duration_seconds <= self.max_duration_seconds:
            raise ValueError("need min_duration_seconds <= default_duration_seconds <= max_duration_seconds")
        return self


class TWAPConfig(_Strict):
    """``router.twap``: when the router (``--algo auto``) splits an order into a short TWAP.
    Missing keys leave it disabled (always one order); ``slices`` below 1 is clamped to 1."""

    enabled: bool = False
    min_notional_usd: Decimal = Field(Decimal("0"), ge=0)
    slices: int = 1
    interval_seconds: float = Field(0.0, ge=0, le=3600)

    _fin = field_validator("min_notional_usd", "interval_seconds")(_finite)

    @field_validator("enabled", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v

    @field_validator("slices", mode="before")
    @classmethod
    def _clamp_slices(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ValueError("must be a whole number")
        try:
            n = int(str(v))
        except ValueError:
            raise ValueError("must be a whole number") from None
        return max(1, min(n, 1000))


class RouterConfig(_Strict):
    twap: TWAPConfig = TWAPConfig()
    maker_first: bool = True
    maker_timeout_seconds: float = Field(5.0, ge=0, le=600)

    _fin = field_validator("maker_timeout_seconds")(_finite)


class TiersConfig(_Strict):
    strategist_min_equity_usdt: Decimal = Field(Decimal("10000"), ge=0)

    _fin = field_validator("strategist_min_equity_usdt")(_finite)


class SimConfig(_Strict):
    half_spread_bps: Decimal = Field(Decimal("1"), ge=0, le=1000)
    impact_coefficient_bps: Decimal = Field(Decimal("10"), ge=0, le=10_000)
    limit_fill_share: Decimal = Field(Decimal("0.25"), gt=0, le=1)
    seed: int = 0
    balances: dict[str, Decimal] = Field(default_factory=lambda: {
        "USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("2000")})

    _fin = field_validator("half_spread_bps", "impact_coefficient_bps", "limit_fill_share")(_finite)

    @field_validator("balances")
    @classmethod
    def _non_negative(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in v.items():
            if amount < 0:
                raise ValueError(f"balance of {asset} must be >= 0, got {amount}")
        return v
