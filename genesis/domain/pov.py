"""Percent of volume (POV): child quantities that follow the volume the market actually trades.

Pure functions, no schedule: before each decision the caller reports the market volume
realised since the previous decision (from 1-minute candles or trades) and the cumulative
figures; ``pov_slice_qty`` returns the next child quantity. The parent works until it is
filled or its deadline passes (``pov_finished``); what is left at the deadline stays unfilled
(POV never sweeps the book to finish). Formulas: docs/algorithms.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from genesis.domain.instrument import Instrument
from genesis.domain.orders import Side

ZERO = Decimal(0)
ONE = Decimal(1)


class PovConfigError(ValueError):
    """A POV parameter is out of range; the message names the field and the accepted range."""


@dataclass(frozen=True, slots=True)
class PovConfig:
    """Participation bounds (fractions of the market's traded volume, e.g. ``0.05`` = 5%).

    ``target_participation``: the share of the cumulative market volume the parent tracks.
    ``min_participation``: every decision trades at least this share of the volume realised
    since the previous decision, even when ahead of target (0: none).
    ``max_participation``: a decision never trades more than this share of the volume realised
    since the previous decision (the catch-up bound), and the cumulative child quantity never
    exceeds this share of the cumulative market volume.
    ``limit_price``: a buy does not trade while the price is above it, a sell while it is below
    it (None: no limit). ``interval_seconds``: the decision cadence (one decision per closed
    1-minute candle by default).
    """

    target_participation: Decimal
    min_participation: Decimal = ZERO
    max_participation: Decimal | None = None  # None: twice the target, at most 1
    limit_price: Decimal | None = None
    interval_seconds: int = 60

    def __post_init__(self) -> None:
        target = _decimal("target_participation", self.target_participation)
        if not ZERO < target <= ONE:
            raise PovConfigError(f"target_participation must be in (0, 1], got {target} (0.05 means 5%)")
        low = _decimal("min_participation", self.min_participation)
        if not ZERO <= low <= target:
            raise PovConfigError(f"min_participation must be in [0, target_participation={target}], got {low}")
        high = min(ONE, 2 * target) if self.max_participation is None else _decimal(
            "max_participation", self.max_participation)
        if not target <= high <= ONE:
            raise PovConfigError(f"max_participation must be in [target_participation={target}, 1], got {high}")
        if self.limit_price is not None and _decimal("limit_price", self.limit_price) <= 0:
            raise PovConfigError(f"limit_price must be > 0 (or omitted for no limit), got {self.limit_price}")
        if isinstance(self.interval_seconds, bool) or not isinstance(self.interval_seconds, int) \
                or self.interval_seconds <= 0:
            raise PovConfigError(
                f"interval_seconds must be a whole number of seconds > 0, got {self.interval_seconds!r}")
        object.__setattr__(self, "target_participation", target)
        object.__setattr__(self, "min_participation", low)
        object.__setattr__(self, "max_participation", high)


def _decimal(field: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise PovConfigError(f"{field} must be a decimal number (e.g. \"0.05\"), got {value!r}")
    try:
        out = Decimal(value)
    except ArithmeticError:
        raise PovConfigError(f"{field} must be a decimal number (e.g. \"0.05\"), got {value!r}") from None
    if not out.is_finite():
        raise PovConfigError(f"{field} must be finite, got {value!r}")
    return out


@dataclass(frozen=True, slots=True)
class PovDecision:
    """The next child quantity and the figures behind it.

    ``qty``: what to send now (0: nothing; the shortfall is carried forward because the target
    is cumulative). ``target_qty``: ``target_participation`` times the cumulative market
    volume. ``wanted_qty``: the catch-up quantity before the bounds. ``cap_qty``: the most this
    decision may trade under ``max_participation``. ``limit_blocked``: the limit price forbids
    trading now. ``reason``: one of ``done``, ``limit``, ``no_volume``, ``target``, ``cap``,
    ``min_participation``, ``below_min``.
    """

    qty: Decimal
    target_qty: Decimal
    wanted_qty: Decimal
    cap_qty: Decimal
    limit_blocked: bool
    reason: str


def limit_forbids(side: Side, price: Decimal, limit_price: Decimal | None) -> bool:
    """True when ``price`` is worse than ``limit_price`` for ``side`` (above for a buy, below for
    a sell). Equal to the limit is allowed."""
    if limit_price is None:
        return False
    return price > limit_price if side is Side.BUY else price < limit_price


def pov_slice_qty(
    *,
    config: PovConfig,
    side: Side,
    interval_volume: Decimal,
    cumulative_volume: Decimal,
    done_qty: Decimal,
    remaining_qty: Decimal,
    instrument: Instrument,
    price: Decimal,
) -> PovDecision:
    """The next child quantity of a POV parent.

    Inputs: ``interval_volume`` = market volume (base) realised since the previous decision;
    ``cumulative_volume`` = market volume realised since the parent started, this interval
    included (both as the venue reports it, our own fills included); ``done_qty`` = our filled
    quantity plus any child still working; ``remaining_qty`` = parent minus filled; ``price`` =
    the price we would trade at now (ask for a buy, bid for a sell).

    With ``p``, ``lo``, ``hi`` the target, min and max participation, ``V`` the cumulative and
    ``v`` the interval volume:

    1. limit: if the price is worse than ``limit_price``, trade 0 (``limit_blocked``);
    2. catch-up: ``wanted = p*V - done_qty``, the shortfall against the cumulative target
       (negative when ahead). Behind target, the whole shortfall is wanted now, but
    3. bounds: ``qty = min(max(wanted, lo*v), hi*v, hi*V - done_qty, remaining_qty,
       instrument max qty)``, rounded down to the step. So a catch-up is paid out of new
       volume at no more than ``hi`` of it, a parent ahead of target still trades ``lo*v``,
       and the cumulative child quantity never exceeds ``hi*V``;
    4. minimum order: a result below ``instrument.min_qty_at(price)`` is 0 and the shortfall
       is carried forward (the cumulative target keeps it). Once the carried shortfall and the
       cumulative headroom ``hi*V - done_qty`` both reach the minimum order, that minimum is
       sent even if it exceeds ``hi*v``: a thin interval cannot hold a parent back forever,
       while the cumulative bound still holds;
    5. remainder: a result that would leave less than the minimum order takes the whole
       remainder when ``hi*V - done_qty`` allows it, otherwise leaves exactly one minimum.

    A zero-volume interval trades nothing unless an earlier shortfall is carried (step 4).
    """
    cap_interval = config.max_participation * max(interval_volume, ZERO)
    headroom = config.max_participation * max(cumulative_volume, ZERO) - done_qty
    target = config.target_participation * max(cumulative_volume, ZERO)
    wanted = target - done_qty
    cap = instrument.round_qty_down(max(ZERO, min(cap_interval, headroom)))
    if remaining_qty <= 0:
        return PovDecision(ZERO, target, wanted, cap, False, "done")
    if limit_forbids(side, price, config.limit_price):
        return PovDecision(ZERO, target, wanted, cap, True, "limit")
    floor = config.min_participation * max(interval_volume, ZERO)
    desired = max(wanted, floor)
    limit = min(cap_interval, headroom, remaining_qty)
    if instrument.max_qty is not None:
        limit = min(limit, instrument.max_qty)
    qty = instrument.round_qty_down(max(ZERO, min(desired, limit)))
    reason = "cap" if desired > cap_interval else ("min_participation" if floor > wanted else "target")
    smallest = instrument.min_qty_at(price)
    if qty < smallest:
        if min(wanted, headroom, remaining_qty) >= smallest:
            qty, reason = smallest, "target"  # the carried shortfall reached one minimum order
        elif remaining_qty < smallest and remaining_qty <= min(wanted, headroom):
            return PovDecision(remaining_qty, target, wanted, cap, False, "target")  # dust: send it whole
        else:
            return PovDecision(ZERO, target, wanted, cap, False,
                               "no_volume" if interval_volume <= 0 and wanted < smallest else "below_min")
    if 0 < remaining_qty - qty < smallest:
        qty = remaining_qty if remaining_qty <= headroom else instrument.round_qty_down(remaining_qty - smallest)
        if qty < smallest:
            return PovDecision(ZERO, target, wanted, cap, False, "below_min")
    return PovDecision(qty, target, wanted, cap, False, reason)


def pov_finished(remaining_qty: Decimal, now: datetime, deadline: datetime | None) -> bool:
    """A POV parent ends when nothing is left or its deadline has passed (None: no deadline)."""
    return remaining_qty <= 0 or (deadline is not None and now >= deadline)
