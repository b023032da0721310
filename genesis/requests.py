"""Validation of a submission, shared by ``genesis submit`` and the daemon.

Pure: input is plain values, output is a ``SubmitRequest`` or a ``RequestError`` that names
the field and says how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Mapping

from genesis.domain.instrument import Instrument
from genesis.request_error import RequestError
from genesis.domain.orders import Side

if TYPE_CHECKING:
    from genesis.config import RuntimeConfig

URGENCIES = ("low", "medium", "high", "critical", "emergency")
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*$")  # ASCII digits only
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_SLICES = 10_000
MAX_ACCOUNT_CHARS = 200  # a venue account name (the leases table's key)
MAX_MAGNITUDE_DIGITS = 15  # quantities and prices are below 10**15
PLAIN_NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]+)?")  # what a person types: no '_', no non-ASCII digits
SHOWN_CHARS = 80  # an input echoed in an error message is cut to this many characters


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    symbol: str
    side: Side
    qty: Decimal
    algo: str
    duration_seconds: int
    slice_count: int | None
    limit_price: Decimal | None
    request_id: str | None
    urgency: str = "low"
    options: dict[str, str] = field(default_factory=dict)  # the algorithm's own submit options, as given
    params: dict[str, str] = field(default_factory=dict)  # what its execution records (the algorithm's config)
    account: str | None = None  # the venue account to trade on; None: the taking daemon's own

    def payload(self) -> dict[str, str | int | None]:
        account = {} if self.account is None else {"account": self.account}
        return {"symbol": self.symbol, "side": self.side.value, "qty": str(self.qty), "algo": self.algo,
                **self.options, **account,
                "duration_seconds": self.duration_seconds, "slice_count": self.slice_count,
                "limit_price": None if self.limit_price is None else str(self.limit_price),
                "request_id": self.request_id}


def shown(value: object) -> str:
    """``value`` quoted for an error message, cut to ``SHOWN_CHARS`` characters (a 100 KB
    input must not come back whole): ``'abc…' (100000 chars)``."""
    text = str(value)
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}… ({len(text)} chars)"


def cut(value: object) -> str:
    """``value`` unquoted (a file name leading a message), cut like ``shown``."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text)} chars)"


def __getattr__(name: str) -> tuple[str, ...]:
    """``ALGOS`` (the ``--algo`` values) and ``WINDOWED_ALGOS`` (those given a ``--duration``),
    from the algorithm registry, imported on first use (it brings the engine's market data:
    the CLI must start without it)."""
    if name not in ("ALGOS", "WINDOWED_ALGOS"):
        raise AttributeError(name)  # checked first: the import machinery probes e.g. __path__
    from genesis.algorithms import registry

    return registry.submittable() if name == "ALGOS" else registry.windowed_submittable()


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``4h``, ``1d`` to whole seconds (ASCII digits)."""
    m = _DURATION_RE.match(str(text))
    if not m:
        raise RequestError("duration", f"{shown(text)} is not a duration; use e.g. 900s, 15m or 4h")
    if len(m.group(1)) > 20:
        raise RequestError("duration", f"{shown(text)} is too long to be a duration; use e.g. 900s, 15m or 4h")
    seconds = Fraction(m.group(1)) * _UNIT_SECONDS[m.group(2)]  # exact: no rounding to 28 digits
    if seconds.denominator != 1:
        raise RequestError("duration", f"{shown(text)} is not a whole number of seconds")
    return int(seconds)


def parse_decimal(field: str, text: str | Decimal | int) -> Decimal:
    """A finite amount below ``10**MAX_MAGNITUDE_DIGITS``. Text must be a plain ASCII decimal
    (``2.5``) or Decimal's own spelling of a number (``1E-8``, as stored in the command inbox):
    ``1_0``, non-ASCII digits and the like are refused, never read as some other number."""
    if isinstance(text, (Decimal, int)) and not isinstance(text, bool):
        value = Decimal(text)
    else:
        stripped = str(text).strip()
        try:
            value = Decimal(stripped) if stripped.isascii() else None
        except (InvalidOperation, ValueError):
            value = None
        if value is None or not (PLAIN_NUMBER_RE.fullmatch(stripped) or str(value) == stripped):
            raise RequestError(field, f"{shown(text)} is not a plain number; use ASCII digits and at most "
                                      "one '.', e.g. 2.5")
    if not value.is_finite():
        raise RequestError(field, f"{shown(text)} is not a finite number")
    if value and value.adjusted() >= MAX_MAGNITUDE_DIGITS:  # beyond any market; would overflow rounding
        raise RequestError(field, f"{shown(text)} is too large")
    return value


def validate_submit(*, symbol: str, side: str, qty: str | Decimal, algo: str, duration: str | int | None,
                    slices: int | None, limit_price: str | Decimal | None, request_id: str | None,
                    instruments: dict[str, Instrument], config: RuntimeConfig, urgency: str | None = None,
                    options: Mapping[str, str | None] | None = None, account: str | None = None) -> SubmitRequest:
    """A submission checked field by field (``RequestError`` names the first bad one); the
    algorithm's own options (``submit_options``) are checked by the algorithm. ``account``:
    the venue account to trade on (None: the account of the daemon that takes it)."""
    from genesis.algorithms.registry import (algorithm_class, option_users, router_decides, slice_count_users,
                                             submittable, urgency_users)

    instrument = instruments.get(symbol)
    if instrument is None:
        raise RequestError("symbol", f"unknown symbol {shown(symbol)}; known: {', '.join(sorted(instruments))}")
    try:
        side_v = Side(str(side).lower())
    except ValueError:
        raise RequestError("side", f"{shown(side)} must be 'buy' or 'sell'") from None
    if algo not in submittable():
        raise RequestError("algo", f"{shown(algo)} is not supported; choose one of: {', '.join(submittable())}")
    qty_v = parse_decimal("qty", qty)
    if qty_v <= 0:
        raise RequestError("qty", f"must be > 0, got {qty_v}")
    if qty_v < instrument.min_qty:
        raise RequestError("qty", f"{qty_v} is below the {symbol} minimum quantity {instrument.min_qty}")
    if instrument.max_qty is not None and qty_v > instrument.max_qty:
        raise RequestError("qty", f"{qty_v} is above the {symbol} maximum quantity {instrument.max_qty}")
    if qty_v != instrument.round_qty_down(qty_v):
        raise RequestError("qty", f"{qty_v} is not a multiple of the {symbol} step size {instrument.step_size}; "
                                  f"use e.g. {instrument.round_qty_down(qty_v)}")
    algorithm = None if router_decides(algo) else algorithm_class(algo)
    section = algorithm.duration_section if algorithm is not None else None
    bounds = getattr(config, section) if section is not None else None
    if urgency is not None and urgency not in URGENCIES:
        raise RequestError("urgency", f"{shown(urgency)} must be one of: {', '.join(URGENCIES)}")
    if urgency is not None and (algorithm is None or not algorithm.accepts_urgency):
        raise RequestError("urgency", f"urgency applies to --algo {' or '.join(urgency_users())}, not {algo}")
    given = {k: v for k, v in (options or {}).items() if v is not None}
    own = {o.name for o in algorithm.options} if algorithm is not None else set()
    for name in given:
        if name not in own:
            raise RequestError(name, f"applies to --algo {' or '.join(option_users(name))}, not {algo}")
    params = algorithm.params_from(given, urgency) if algorithm is not None else {}  # RequestError names the option
    duration_s = (bounds.default_duration_seconds if bounds is not None else 0) if duration is None else (
        duration if isinstance(duration, int) and not isinstance(duration, bool) else parse_duration(str(duration)))
    if bounds is None:
        _check_router_timed(algo, duration_s if duration is not None else 0, slices)
        duration_s = 0  # the router sets auto/single timing
    elif not bounds.min_duration_seconds <= duration_s <= bounds.max_duration_seconds:
        raise RequestError("duration", f"{duration_s}s is outside what {algo} allows "
                                       f"({bounds.min_duration_seconds}s to {bounds.max_duration_seconds}s; "
                                       f"widen {section}.min/max_duration_seconds in the config)")
    if slices is not None and not (1 <= slices <= MAX_SLICES):
        raise RequestError("slices", f"must be between 1 and {MAX_SLICES}, got {slices}")
    if algorithm is not None and slices is not None:
        if not algorithm.honours_slice_count:
            raise RequestError("slices", f"--algo {algo} takes no slice count (it slices by its own interval in "
                                         f"the config); drop --slices, or use --algo "
                                         f"{' or '.join(slice_count_users())} for a set number of slices")
        _check_slice_interval(duration_s, slices, config)
    price_v = None
    if limit_price is not None:
        price_v = parse_decimal("limit_price", limit_price)
        if price_v <= 0:
            raise RequestError("limit_price", f"must be > 0, got {price_v}")
        if price_v != instrument.round_price(price_v):
            raise RequestError("limit_price", f"{price_v} is not on the {symbol} tick size {instrument.tick_size}")
    if request_id is not None and not _REQUEST_ID_RE.fullmatch(request_id):
        raise RequestError("id", "use 1-128 characters from A-Z a-z 0-9 . _ : -")
    if account is not None and not (isinstance(account, str) and 1 <= len(account) <= MAX_ACCOUNT_CHARS
                                    and account.isprintable()):  # no NUL, control or lone surrogate (not storable)
        raise RequestError("account", f"{shown(account)} is not an account name (1-{MAX_ACCOUNT_CHARS} "
                                      "printable characters)")
    if algorithm is not None and algorithm.accepts_urgency:
        given["urgency"] = urgency or "low"
    return SubmitRequest(symbol, side_v, qty_v, algo, duration_s, slices, price_v, request_id, urgency or "low",
                         {k: str(v) for k, v in given.items()}, params, account)


def _check_router_timed(algo: str, duration_seconds: int, slices: int | None) -> None:
    """``single`` and ``auto`` take their timing from the router: a window or a slice count
    given with them would be silently ignored, so it is refused."""
    from genesis.algorithms.registry import slice_count_users

    if duration_seconds:
        raise RequestError("duration", f"--algo {algo} takes no duration (the router sets its timing); "
                                       "drop --duration, or use --algo twap or vwap for a window")
    if slices is not None:
        raise RequestError("slices", f"--algo {algo} takes no slice count (the router sets it); "
                                     f"drop --slices, or use --algo {' or '.join(slice_count_users())}")


def _check_slice_interval(duration_seconds: int, count: int, config: RuntimeConfig) -> None:
    """Slices asked for must be at least the maker timeout apart: a maker order rests that long
    before the taker fallback, so denser slices would overrun their windows."""
    timeout = Decimal(str(config.router.maker_timeout_seconds))
    if not config.router.maker_first or timeout <= 0 or duration_seconds >= count * timeout:
        return
    largest = int(duration_seconds / timeout)
    if largest < 1:
        raise RequestError("duration", f"{duration_seconds}s is shorter than one maker timeout "
                                       f"(router.maker_timeout_seconds {timeout}s); use a longer --duration")
    raise RequestError("slices",
                       f"{count} slices over {duration_seconds}s are {Decimal(duration_seconds) / count:.3g}s apart, "
                       f"less than the maker timeout (router.maker_timeout_seconds {timeout}s); "
                       f"use at most --slices {largest} for --duration {duration_seconds}s, or a longer --duration")
