"""Runtime configuration: ``config/runtime.yaml`` parsed into typed, validated models.

Every error names the offending key (``risk.price_collar_bps: ...``) and nothing is guessed:
unknown keys are rejected so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genesis.domain.risk import RiskLimits


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid. The message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("must be a finite number")
    if isinstance(v, Decimal) and not v.is_finite():
        raise ValueError("must be a finite number")
    return v


class EngineConfig(_Strict):
    command_poll_seconds: float = Field(0.25, gt=0, le=5)
    drain_timeout_seconds: float = Field(10.0, gt=0, le=300)
    venue_retry_seconds: float = Field(1.0, gt=0, le=60)
    max_venue_retries: int = Field(20, ge=1, le=10_000)


class RiskConfig(_Strict):
    kill_switch: bool = False
    max_parent_notional_usdt: Decimal = Field(Decimal("5000000"), gt=0)
    max_position_base: dict[str, Decimal] = Field(default_factory=dict)
    price_collar_bps: Decimal = Field(Decimal("200"), gt=0)

    _fin = field_validator("max_parent_notional_usdt", "price_collar_bps")(_finite)

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
    min_duration_seconds: int = Field(300, gt=0)
    max_duration_seconds: int = Field(1800, gt=0)
    default_duration_seconds: int = Field(900, gt=0)
    pause_policy: Literal["extend", "compress"] = "extend"

    @model_validator(mode="after")
    def _bounds(self) -> "TwapAlgoConfig":
        if self.min_duration_seconds > self.max_duration_seconds:
            raise ValueError("min_duration_seconds must be <= max_duration_seconds")
        if not self.min_duration_seconds <= self.default_duration_seconds <= self.max_duration_seconds:
            raise ValueError("default_duration_seconds must lie between min and max")
        return self


class SimConfig(_Strict):
    half_spread_bps: Decimal = Field(Decimal("1"), ge=0)
    impact_coefficient_bps: Decimal = Field(Decimal("10"), ge=0)
    limit_fill_share: Decimal = Field(Decimal("0.25"), gt=0, le=1)
    seed: int = 0
    balances: dict[str, Decimal] = Field(default_factory=lambda: {
        "USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("2000")})

    _fin = field_validator("half_spread_bps", "impact_coefficient_bps", "limit_fill_share")(_finite)


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"


class RuntimeConfig(_Strict):
    engine: EngineConfig = EngineConfig()
    risk: RiskConfig = RiskConfig()
    twap: TwapAlgoConfig = TwapAlgoConfig()
    sim: SimConfig = SimConfig()
    logging: LoggingConfig = LoggingConfig()


def parse_config(data: Any, source: str = "config") -> RuntimeConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc)) from None


def load_config(path: str | Path | None) -> RuntimeConfig:
    """Load and validate a YAML config. A missing *default* file means all defaults; an
    explicitly named file that does not exist is an error."""
    if path is None:
        return RuntimeConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(data, str(p))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/runtime.yaml for the known keys)"
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)
