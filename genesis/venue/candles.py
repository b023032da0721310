"""1-minute candle series: compact storage, O(1) lookup by minute, exact ``Decimal`` values.

Files are CSV (optionally gzip-compressed) with the header
``timestamp,open,high,low,close,volume``; ``timestamp`` is the candle open time in integer
milliseconds UTC, rows are exactly one minute apart with no gaps. Numeric columns are kept as
numpy ``float64`` arrays for fast vectorised work (volume curves); ``Candle`` objects are built
on demand from the original text of each field, so prices and volumes are exact ``Decimal``.
"""

from __future__ import annotations

import functools
import gzip
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genesis.clock import utc
from genesis.venue.base import Candle

HEADER = "timestamp,open,high,low,close,volume"
MINUTE_MS = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
_DATA_SUFFIX = "-1m.csv.gz"


def to_epoch_ms(t: datetime) -> int:
    """Exact integer milliseconds since the Unix epoch (naive datetimes are taken as UTC)."""
    return (utc(t) - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    """Aware UTC datetime for integer epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=int(ms))


class CandleSeries:
    """One symbol's contiguous 1-minute candles (read-only after construction).

    Row ``i`` opens at ``first_open_time + i minutes``; lookups are index arithmetic.
    Build it with ``load_candles``, ``shipped_candles`` or ``CandleSeries.from_candles``.
    """

    __slots__ = ("_symbol", "_first_ms", "_open_ms", "_ohlcv", "_lines", "_parsed")

    # parsed candles kept (immutable, shared): the simulator asks for the same few minutes
    # over and over; bounded so that a 20-day history read does not pin 28,800 objects
    CACHE_SIZE = 4096

    def __init__(self, open_ms: np.ndarray, ohlcv: np.ndarray, lines: Sequence[str],
                 symbol: str | None = None):
        """Internal: use the loaders. ``lines`` holds each row's original CSV text."""
        if len(open_ms) == 0 or len(open_ms) != len(ohlcv) or len(open_ms) != len(lines):
            raise ValueError("a CandleSeries needs at least one row and equal-length columns")
        self._symbol = symbol
        self._open_ms = np.asarray(open_ms, dtype=np.int64)
        self._ohlcv = np.asarray(ohlcv, dtype=np.float64)
        self._open_ms.setflags(write=False)
        self._ohlcv.setflags(write=False)
        self._first_ms = int(self._open_ms[0])
        self._lines = tuple(lines)
        self._parsed: dict[int, Candle] = {}

    @classmethod
    def from_candles(cls, candles: Iterable[Candle], symbol: str | None = None) -> CandleSeries:
        """Build a series from ``Candle`` objects (tests, synthetic markets).

        The same checks as for files apply (contiguous minutes, consistent OHLC)."""
        lines = [
            f"{to_epoch_ms(c.open_time)},{c.open},{c.high},{c.low},{c.close},{c.volume}"
            for c in candles
        ]
        return _parse_lines(lines, source="<candles>", symbol=symbol)

    # ----------------------------------------------------------------- size and bounds
    @property
    def symbol(self) -> str | None:
        return self._symbol

    def __len__(self) -> int:
        return len(self._lines)

    def __repr__(self) -> str:
        return (f"CandleSeries({self._symbol!r}, {len(self)} candles, "
                f"{self.first_open_time.isoformat()} .. {self.last_open_time.isoformat()})")

    @property
    def first_open_time(self) -> datetime:
        return from_epoch_ms(self._first_ms)

    @property
    def last_open_time(self) -> datetime:
        return from_epoch_ms(self._first_ms + (len(self) - 1) * MINUTE_MS)

    @property
    def end_time(self) -> datetime:
        """Close time of the last candle (``last_open_time`` + 1 minute)."""
        return from_epoch_ms(self._first_ms + len(self) * MINUTE_MS)

    # ----------------------------------------------------------------- lookup
    def index_at(self, t: datetime) -> int | None:
        """Row index of the candle whose minute contains ``t``, or None outside the series."""
        i = (to_epoch_ms(t) - self._first_ms) // MINUTE_MS
        return i if 0 <= i < len(self) else None

    def candle(self, index: int) -> Candle:
        """The candle at row ``index`` with exact ``Decimal`` fields."""
        parsed = self._parsed.get(index)
        if parsed is not None:
            return parsed
        ts, o, h, low, c, v = self._lines[index].split(",")
        parsed = Candle(open_time=from_epoch_ms(int(ts)), open=Decimal(o), high=Decimal(h),
                        low=Decimal(low), close=Decimal(c), volume=Decimal(v))
        if len(self._parsed) >= self.CACHE_SIZE:
            del self._parsed[next(iter(self._parsed))]  # the oldest parsed
        self._parsed[index] = parsed
        return parsed

    def candle_at(self, t: datetime) -> Candle | None:
        """The candle whose minute ``[open_time, open_time + 1 min)`` contains ``t``."""
        i = self.index_at(t)
        return None if i is None else self.candle(i)

    def range(self, start: datetime, end: datetime) -> list[Candle]:
        """Candles with ``start <= open_time < end``, in time order."""
        return [self.candle(i) for i in self.indices(start, end)]

    def indices(self, start: datetime, end: datetime, closed_by: datetime | None = None) -> range:
        """Row indices of the candles with ``start <= open_time < end`` and, with
        ``closed_by``, only those closed by then (``open_time + 1 min <= closed_by``)."""
        lo = max(0, -(-(to_epoch_ms(start) - self._first_ms) // MINUTE_MS))
        hi = min(len(self), -(-(to_epoch_ms(end) - self._first_ms) // MINUTE_MS))
        if closed_by is not None:
            hi = min(hi, (to_epoch_ms(closed_by) - self._first_ms) // MINUTE_MS)
        return range(lo, max(lo, hi))

    # ----------------------------------------------------------------- numeric views
    def open_times_ms(self) -> np.ndarray:
        """Read-only int64 array of candle open times (epoch ms)."""
        return self._open_ms

    def opens_float(self) -> np.ndarray:
        return self._ohlcv[:, 0]

    def highs_float(self) -> np.ndarray:
        return self._ohlcv[:, 1]

    def lows_float(self) -> np.ndarray:
        return self._ohlcv[:, 2]

    def closes_float(self) -> np.ndarray:
        """Read-only float64 close prices (for statistics only: never for money)."""
        return self._ohlcv[:, 3]

    def volumes_float(self) -> np.ndarray:
        """Read-only float64 base-asset volumes (for volume curves: never for money)."""
        return self._ohlcv[:, 4]


def load_candles(path: str | Path, symbol: str | None = None) -> CandleSeries:
    """Load a 1-minute candle CSV (``.gz`` or plain) into a ``CandleSeries``.

    Raises ``ValueError`` naming the file and line for a bad header, a malformed row, a
    timestamp not on a minute boundary, or rows that are not increasing exactly one minute apart.
    """
    path = Path(path)
    return _parse_bytes(path.read_bytes(), source=str(path), symbol=symbol)


def _symbol_to_file(symbol: str) -> str:
    return symbol.replace("/", "_") + _DATA_SUFFIX


@functools.lru_cache(maxsize=1)
def shipped_symbols() -> tuple[str, ...]:
    """Symbols (``BTC/USDT`` ...) whose candles ship in the ``genesis/data`` package directory."""
    folder = resources.files("genesis") / "data"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(_DATA_SUFFIX))
    return tuple(name[: -len(_DATA_SUFFIX)].replace("_", "/") for name in names)


@functools.lru_cache(maxsize=None)
def shipped_candles(symbol: str) -> CandleSeries:
    """The packaged 1-minute candles of ``symbol`` (cached). Unknown symbol -> ``KeyError``."""
    if symbol not in shipped_symbols():
        raise KeyError(f"no shipped candles for {symbol!r}; shipped symbols: "
                       f"{', '.join(shipped_symbols())}")
    resource = resources.files("genesis") / "data" / _symbol_to_file(symbol)
    return _parse_bytes(resource.read_bytes(), source=f"genesis/data/{resource.name}",
                        symbol=symbol)


# --------------------------------------------------------------------- parsing
def _parse_bytes(data: bytes, source: str, symbol: str | None) -> CandleSeries:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{source}: corrupt gzip data ({exc})") from exc
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not an ASCII CSV file ({exc})") from exc
    head, _, body = text.partition("\n")
    if head.strip() != HEADER:
        raise ValueError(f"{source}, line 1: expected header {HEADER!r}, got {head.strip()[:80]!r}")
    return _parse_lines(body.splitlines(), source=source, symbol=symbol)


def _parse_lines(lines: list[str], source: str, symbol: str | None) -> CandleSeries:
    """Vectorised parse of data rows (line 1 is the header, so row i is line i + 2)."""
    if not lines:
        raise ValueError(f"{source}: no candles after the header")
    flat = ",".join(lines).split(",")
    try:
        if len(flat) != 6 * len(lines):
            raise ValueError("field count")
        values = np.array(flat, dtype=np.float64).reshape(-1, 6)
        open_ms = np.array(flat[0::6], dtype=np.int64)
    except ValueError:
        _raise_first_bad_row(lines, source)
        raise  # _raise_first_bad_row always raises; keeps type checkers happy
    ohlcv = values[:, 1:]
    if not np.isfinite(ohlcv).all():
        _raise_first_bad_row(lines, source)
    _check_times(open_ms, source)
    _check_ohlc(ohlcv, source)
    return CandleSeries(open_ms, ohlcv, lines, symbol=symbol)


def _raise_first_bad_row(lines: list[str], source: str) -> None:
    for i, line in enumerate(lines):
        fields = line.split(",")
        where = f"{source}, line {i + 2}"
        if len(fields) != 6:
            raise ValueError(f"{where}: expected 6 fields, got {len(fields)}: {line[:80]!r}")
        try:
            int(fields[0])
        except ValueError:
            raise ValueError(
                f"{where}: timestamp {fields[0]!r} is not integer milliseconds") from None
        for name, text in zip(("open", "high", "low", "close", "volume"), fields[1:]):
            try:
                ok = Decimal(text).is_finite()
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValueError(f"{where}: {name} {text!r} is not a finite decimal number")
    raise ValueError(f"{source}: malformed CSV")


def _check_times(open_ms: np.ndarray, source: str) -> None:
    if open_ms[0] % MINUTE_MS:
        raise ValueError(f"{source}, line 2: timestamp {open_ms[0]} is not on a minute boundary")
    steps = np.diff(open_ms)
    bad = np.flatnonzero(steps != MINUTE_MS)
    if bad.size:
        i = int(bad[0]) + 1
        gap_ms = int(steps[i - 1])
        what = "not increasing" if gap_ms <= 0 else f"{gap_ms} ms after the previous row"
        raise ValueError(f"{source}, line {i + 2}: timestamp {open_ms[i]} is {what}; "
                         f"expected exactly one minute ({MINUTE_MS} ms) spacing")


def _check_ohlc(ohlcv: np.ndarray, source: str) -> None:
    o, h, low, c, v = (ohlcv[:, k] for k in range(5))
    ok = (low <= np.minimum(o, c)) & (h >= np.maximum(o, c)) & (low > 0) & (v >= 0)
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{source}, line {i + 2}: inconsistent candle (need 0 < low <= open, "
                         f"close <= high and volume >= 0)")
