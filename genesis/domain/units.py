"""Units shared by the domain: one definition each."""

from __future__ import annotations

from decimal import Decimal

BPS = Decimal(10_000)  # basis points in one: ``ratio * BPS`` is bps
