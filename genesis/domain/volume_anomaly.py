"""The one volume-anomaly rule, used wherever a minute's volume is judged against its usual level."""

from __future__ import annotations

from decimal import Decimal

DEFAULT_ANOMALY_RATIO = 5.0


def _exact(value: Decimal | float) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def is_volume_anomaly(observed_volume: Decimal | float, usual_volume: Decimal | float | None,
                      ratio: float = DEFAULT_ANOMALY_RATIO) -> bool:
    """True when ``observed_volume`` is at least ``ratio`` times ``usual_volume``, or at most
    ``1/ratio`` of it. The boundary is anomalous on both sides: exactly 5x, or exactly a
    fifth, of the usual volume is an anomaly at the default ratio. Compared exactly
    (``observed >= ratio * usual`` or ``observed * ratio <= usual``), never through a rounded
    quotient. No usual level (None, or not positive): never an anomaly."""
    if usual_volume is None:
        return False
    usual, observed, r = _exact(usual_volume), _exact(observed_volume), _exact(ratio)
    if usual <= 0:
        return False
    return observed >= r * usual or observed * r <= usual
