"""An order whose send got no answer, still not shown by the venue past its window's deadline:
looked up with back-off, then an alarm recorded on the execution that names the order and
what to check (``SlicingHeld`` ``order_outcome_unknown``); the lookups go on, an order shown
later is recorded with its fills, and it is never sent again. Virtual clock, simulated venue
behind ``FaultyVenue``."""

from __future__ import annotations

from datetime import timedelta

import pytest
import structlog

from genesis.config import ConfigError, parse_config
from genesis.domain import events as ev
from genesis.domain.execution import ORDER_CUTOFF
from genesis.engine.outcome_alarm import OutcomeAlarm
from genesis.engine.slice_executor import RoutingSettings
from genesis.engine.supervisor_config import runner_settings
from genesis.engine.venue_calls import RetryPolicy, VenueCaller, VenueUnavailable
from genesis.venue.base import UnknownOutcomeError
from tests.faulty_venue import FaultyVenue
from tests.test_slice_executor_ports import QTY, EventLog, ports
from tests.test_window_deadline import END, ten_second_window

DEADLINE = END - ORDER_CUTOFF
POLICY = RetryPolicy()  # the alarm 120 s past the deadline, lookups every 30 s at most


def taker_slice(stop_after: timedelta | None = None, policy: RetryPolicy = POLICY):  # type: ignore[no-untyped-def]
    """The ten-second window's one slice, a market order whose send times out after the venue
    took it; ``stop_after``: a stop request that long past the deadline."""
    log = ten_second_window()
    executor, clock, _, calls = ports(log)
    faulty = FaultyVenue(calls.venue)
    faulty.fail_next(1, UnknownOutcomeError("read timeout"), after_accept=True)

    def stopping() -> bool:
        return stop_after is not None and clock.now() >= DEADLINE + stop_after

    alarm = OutcomeAlarm("0123456789ab", lambda: faulty.name, load=log.load, append=log.append, clock=clock,
                         log=structlog.get_logger())
    executor.venue = VenueCaller(faulty, clock, policy, stopping, structlog.get_logger(), alarm=alarm)
    executor.routing = RoutingSettings(maker_first=False)
    return log, executor, clock, faulty


async def run(log, executor, clock) -> None:  # type: ignore[no-untyped-def]
    agg = await log.load()
    async with clock.actor():
        await executor.execute(agg, agg.slices[0], 1, 10.0)


async def test_an_order_shown_after_the_alarm_is_recorded_with_its_fill_and_the_alarm_ends() -> None:
    log, executor, clock, faulty = taker_slice()
    faulty.hide_orders(clock, END + timedelta(minutes=5))
    await run(log, executor, clock)
    [held] = log.of(ev.SlicingHeld)
    coid = log.of(ev.OrderIntended)[0].client_order_id
    assert held.reason == ev.HOLD_ORDER_OUTCOME_UNKNOWN and coid in held.detail
    assert "check the venue" in held.detail and "never sent again" in held.detail
    assert DEADLINE + timedelta(seconds=POLICY.outcome_alarm_seconds) <= held.occurred_at
    [resumed] = log.of(ev.SlicingResumed)
    assert resumed.occurred_at >= END + timedelta(minutes=5) and resumed.held_seconds > 0
    # the fill the venue made is recorded once; the order was sent under one id, never past the deadline
    assert sum(f.qty for f in log.of(ev.FillRecorded)) == QTY
    assert [(c.client_order_id, c.status) for c in log.of(ev.OrderClosed)] == [(coid, "filled")]
    assert {c for c, _ in faulty.sends} == {coid} and len(log.of(ev.OrderIntended)) == 1
    assert all(at is not None and at < DEADLINE for _, at in faulty.sends)
    assert log.events.index(resumed) < log.events.index(log.of(ev.OrderClosed)[0])
    agg = await log.load()
    assert agg.held_since is None and agg.held_seconds == resumed.held_seconds and agg.filled_qty == QTY


async def test_an_order_shown_before_the_alarm_raises_none() -> None:
    log, executor, clock, faulty = taker_slice()
    faulty.hide_orders(clock, END + timedelta(seconds=30))
    await run(log, executor, clock)
    assert log.of(ev.SlicingHeld) == [] and sum(f.qty for f in log.of(ev.FillRecorded)) == QTY


async def test_an_order_never_shown_is_alarmed_once_looked_up_on_never_sent_again_until_a_stop() -> None:
    log, executor, clock, faulty = taker_slice(stop_after=timedelta(hours=6))
    faulty.hide_orders(clock, None)
    with pytest.raises(VenueUnavailable):
        await run(log, executor, clock)
    assert clock.now() >= DEADLINE + timedelta(hours=6)  # looked up all along, not given up
    [held] = log.of(ev.SlicingHeld)
    assert held.reason == ev.HOLD_ORDER_OUTCOME_UNKNOWN
    assert log.of(ev.OrderClosed) == [] and log.of(ev.FillRecorded) == []  # not recorded as not found
    agg = await log.load()
    assert [o.client_order_id for o in agg.unresolved_orders()] == [log.of(ev.OrderIntended)[0].client_order_id]
    assert agg.hold_reason == ev.HOLD_ORDER_OUTCOME_UNKNOWN
    assert all(at is not None and at < DEADLINE for _, at in faulty.sends)  # same id, before the deadline only


def test_the_alarm_is_a_critical_alert_naming_the_order() -> None:
    from genesis.observability.alert_rules import CRITICAL, event_alerts
    from genesis.observability.runtime import ALERT_EVENTS

    held = ev.SlicingHeld("0123456789ab", END, ev.HOLD_ORDER_OUTCOME_UNKNOWN, "sim", "BTC/USDT",
                          "client order id abc-0-0 (...): check the venue's orders and trades")
    [alert] = event_alerts(held)
    assert alert.severity == CRITICAL and "abc-0-0" in alert.body and "0123456789ab" in alert.title
    assert ev.SlicingHeld in ALERT_EVENTS
    market = ev.SlicingHeld("0123456789ab", END, ev.HOLD_MARKET_DATA_UNAVAILABLE, "sim", "BTC/USDT")
    assert event_alerts(market) == []  # the market-data hold resumes by itself: not alerted here


async def test_the_alarm_time_is_the_configured_engine_outcome_alarm_seconds() -> None:
    config = parse_config({"engine": {"outcome_alarm_seconds": 20}})
    policy = runner_settings(config).retry
    assert policy.outcome_alarm_seconds == 20.0
    log, executor, clock, faulty = taker_slice(policy=policy)
    faulty.hide_orders(clock, END + timedelta(seconds=90))  # shown before the default 120 s, after 20 s
    await run(log, executor, clock)
    [held] = log.of(ev.SlicingHeld)
    assert DEADLINE + timedelta(seconds=20) <= held.occurred_at < DEADLINE + timedelta(seconds=90)
    assert sum(f.qty for f in log.of(ev.FillRecorded)) == QTY


def test_a_bad_outcome_alarm_seconds_names_the_key() -> None:
    with pytest.raises(ConfigError, match="outcome_alarm_seconds"):
        parse_config({"engine": {"outcome_alarm_seconds": 0}})
