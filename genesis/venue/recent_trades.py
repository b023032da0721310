"""The trade stream's latest trades one by one, so an interval starting inside a bucket counts
the part of that bucket after its start (``TradeVolume.volume``) instead of leaving it out.

A slice's interval starts when the slice does, anywhere inside a second; the paper exchange's
tape (like a real one) often trades a large print in the first instants. Leaving out the
bucket the interval starts in loses that print: on ``bench.parents_bench`` at 100 parents the
cap saw its room up to ~4 s after the exchange's tape had made it (p99). Only the last
``keep_ms`` are kept (bounded memory); an interval starting before that falls back to
leaving its first bucket out (the count stays a lower bound either way).
"""

from __future__ import annotations

from decimal import Decimal

DEFAULT_KEEP_MS = 180_000


class RecentTrades:
    """Counted trades of the last ``keep_ms`` (epoch ms), by bucket start (``bucket_ms``)."""

    def __init__(self, bucket_ms: int, keep_ms: int = DEFAULT_KEEP_MS):
        self.bucket_ms, self.keep_ms = bucket_ms, keep_ms
        self._by_bucket: dict[int, list[tuple[int, Decimal]]] = {}

    def __len__(self) -> int:
        return sum(len(trades) for trades in self._by_bucket.values())

    def add(self, stamp_ms: int, qty: Decimal, now_ms: int) -> None:
        """One counted trade; what is older than ``keep_ms`` before ``now_ms`` is let go."""
        if stamp_ms < now_ms - self.keep_ms:
            return
        self._by_bucket.setdefault(stamp_ms - stamp_ms % self.bucket_ms, []).append((stamp_ms, qty))
        self._forget(now_ms - self.keep_ms)

    def volume(self, start_ms: int, end_ms: int) -> Decimal:
        """Volume of the kept trades in ``[start_ms, end_ms)`` inside one bucket."""
        trades = self._by_bucket.get(start_ms - start_ms % self.bucket_ms, ())
        return sum((qty for stamp, qty in trades if start_ms <= stamp < end_ms), Decimal(0))

    def _forget(self, before_ms: int) -> None:
        # buckets are created in (nearly) time order: drop from the oldest until a kept one
        while self._by_bucket:
            oldest = next(iter(self._by_bucket))
            if oldest + self.bucket_ms > before_ms:
                break
            del self._by_bucket[oldest]
