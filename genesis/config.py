"""Runtime configuration: ``config/runtime.yaml`` parsed into typed, validated models.

Every error names the offending key (``risk.price_collar_bps: ...``) and nothing is guessed:
unknown keys are rejected so a typo cannot silently fall back to a default. An error never
quotes the file's content (``--config`` may point at a file that is not a config at all, e.g. a
symlink to a secrets file): a YAML error gives its line and column, and a key that does not
look like a config key name is shown by its line number only.
"""

from __future__ import annotations

import math
import os
import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genesis.domain.risk import RiskLimits

if TYPE_CHECKING:
    from genesis.domain.twap import TwapParams


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid. The message names the key."""


MAX_WINDOW_SECONDS = 30 * 86_400  # an execution window; far inside what datetime arithmetic holds
_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_./-]{1,64}")  # config keys, symbols, assets


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic would read `max_venue_retries: true` as 1; a boolean where a number belongs is a mistake
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                if isinstance(data.get(name), bool) and info.annotation in (int, float, Decimal):
                    raise ValueError(f"{name}: must be a number, not {str(data[name]).lower()}")
        return data


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
    price_collar_bps: Decimal = Field(Decimal("200"), gt=0, le=10_000)

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


class CcxtConfig(_Strict):
    """``ccxt``: exchanges through ccxt (``--venue ccxt:<id>``; docs/ccxt.md). The traded volume
    the participation cap is held to is kept ``traded_volume_keep_seconds`` and read over REST
    (klines, aggTrades) at most ``traded_volume_rest_pages`` pages per look. Without
    ``--streams`` the cap is held to it only with ``rest_traded_volume`` (else to the forecast)."""

    rest_traded_volume: bool = False
    traded_volume_keep_seconds: float = Field(7200.0, ge=600, le=86_400)
    traded_volume_rest_pages: int = Field(5, ge=1, le=100)
    streams: StreamsConfig = StreamsConfig()

    _fin = field_validator("traded_volume_keep_seconds")(_finite)


class RuntimeConfig(_Strict):
    engine: EngineConfig = EngineConfig()
    risk: RiskConfig = RiskConfig()
    twap: TwapAlgoConfig = TwapAlgoConfig()
    vwap: VwapAlgoConfig = VwapAlgoConfig()
    router: RouterConfig = RouterConfig()
    tiers: TiersConfig = TiersConfig()
    sim: SimConfig = SimConfig()
    logging: LoggingConfig = LoggingConfig()
    alerts: AlertsConfig = AlertsConfig()
    store: StoreConfig = StoreConfig()
    leases: LeasesConfig = LeasesConfig()
    ccxt: CcxtConfig = CcxtConfig()


def parse_config(data: Any, source: str = "config", key_lines: dict[str, int] | None = None) -> RuntimeConfig:
    """Validate parsed YAML. ``key_lines`` (key -> line), given for data read from a file, hides
    the keys that do not look like config keys behind their line numbers."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc, key_lines)) from None


def load_config(path: str | Path | None) -> RuntimeConfig:
    """Load and validate a YAML config. A missing *default* file means all defaults; an
    explicitly named file that does not exist is an error."""
    if path is None:
        return RuntimeConfig()
    p = Path(path)
    try:
        text = _read_regular_file(p).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    loader: _UniqueKeyLoader | None = None
    try:
        loader = _UniqueKeyLoader(text)
        data = loader.get_single_data()
    except _DuplicateKey as exc:
        raise ConfigError(f"{p}: duplicate key {_shown(exc.key, exc.line)} (line {exc.line}): "
                          f"YAML would keep only the last") from None
    except yaml.YAMLError as exc:  # never the parser's own message: it quotes the file
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where} (content not shown)") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return parse_config(data, str(p), loader.key_lines)


def _read_regular_file(p: Path) -> bytes:
    """The file's bytes; a FIFO, device or directory is refused without blocking on it."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"
            raise ConfigError(f"{p}: cannot read config file: not a regular file ({kind}); "
                              f"point --config at a YAML file")
        _refuse_world_writable(p, st.st_mode)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _refuse_world_writable(p: Path, st_mode: int) -> None:
    """Any user could change the risk limits in a world-writable config: refuse it."""
    mode = stat.S_IMODE(st_mode)
    if mode & stat.S_IWOTH:
        raise ConfigError(f"{p}: config file is world-writable (mode {mode:04o}): any user could change the "
                          f"risk limits. Refusing to use it; fix with: chmod o-w {p}")


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int):
        super().__init__(f"duplicate key at line {line}")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)
    and records the line of every string key (``key_lines``)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.key_lines: dict[str, int] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable key: the base class reports it
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            if isinstance(key, str):
                self.key_lines.setdefault(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def _shown(key: Any, line: int | None) -> str:
    """``key`` when it looks like a config key, a symbol or an asset; else only where it is."""
    if isinstance(key, str) and _SHOWABLE_KEY.fullmatch(key):
        return repr(key)
    return f"<a key at line {line}, not shown>" if line else "<a key, not shown>"


def _describe(exc: ValidationError, key_lines: dict[str, int] | None) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) if key_lines is None or isinstance(x, int) or _SHOWABLE_KEY.fullmatch(str(x))
                       else _shown(x, key_lines.get(str(x))) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/runtime.yaml for the known keys)"
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)


def get_twap_config(config: RuntimeConfig) -> TWAPConfig:
    """The router's TWAP settings (defaults when the section is missing or partial)."""
    return config.router.twap
