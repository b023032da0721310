"""Story 4.3 AC5 early completion: the window end it chooses under the participation cap, and
the figures behind it in the event (simulated venue, virtual clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from genesis.domain import events as ev
from genesis.domain.codec import decode
from genesis.domain.twap import TwapParams, early_completion_end
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
NOW = datetime(2025, 6, 10, 13, 5, tzinfo=timezone.utc)
OLD_END = NOW + timedelta(seconds=1500)


def of(history: list[ev.Event], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in history if isinstance(e, cls)]


async def run_thirty_btc(db_path, btc_per_minute: str) -> list[ev.Event]:  # type: ignore[no-untyped-def]
    """30 BTC over 30 minutes; the price drops 30 bps five minutes in (early completion for a buy)."""
    drop = HISTORY_DAYS * 1440 + 65
    btc = series(HISTORY_DAYS + 1, lambda i: D("100000") if i < drop else D("99700"), flat(btc_per_minute))
    async with harness(db_path, start=START, venue=lambda c: venue(c, btc)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="30", duration="30m"))
        await h.supervisor.wait_all()
        return [s.event for s in await h.store.read(execution_id)]


async def test_a_large_parent_finishes_before_the_old_end_when_the_cap_has_headroom(db_path):
    # 12 BTC/min: the 10% cap absorbs 1.2 BTC/min, the ~25 BTC left need ~1,270 s of the ~1,470
    # s left. The 25% margin (~1,590 s) would reach the old end: it shrinks to half the headroom
    history = await run_thirty_btc(db_path, "12")
    started = of(history, ev.ExecutionStarted)[0]
    (early,) = of(history, ev.EarlyCompletionTriggered)
    assert early.accelerated is True and early.previous_end_at == started.end_at
    assert early.end_at is not None and early.end_at < started.end_at
    assert early.volume_rate_per_second == D("0.2") and early.participation_cap == D("0.10")
    left = D(str((started.end_at - early.occurred_at).total_seconds()))
    assert early.cap_span_seconds is not None and early.cap_span_seconds < left
    headroom = left - early.cap_span_seconds
    moved = D(str((started.end_at - early.end_at).total_seconds()))
    assert abs(moved - headroom / 2) < D("0.01")  # the fastest end that keeps half the headroom as margin
    open_slices = len(started.slices) - len([s for s in of(history, ev.TwapSliceExecuted)
                                             if s.occurred_at <= early.occurred_at])
    assert early.nominal_span_seconds == 10 * open_slices
    assert "window end" in early.reason and "0.10" in early.reason and "0.20000000/s" in early.reason
    (replan,) = [r for r in of(history, ev.ScheduleReplanned) if r.reason.startswith("early completion")]
    # the slices are squeezed towards the target; the window (the deadline) keeps its end
    assert replan.occurred_at == early.occurred_at and replan.end_at == started.end_at
    assert all(p.scheduled_at < early.end_at for p in replan.slices)
    done = [e for e in history if not isinstance(e, ev.SliceParticipationMeasured)][-1]  # measurements may follow the end
    assert isinstance(done, ev.TwapCompleted) and done.reason == "filled" and done.filled_qty == D("30")
    assert done.occurred_at < started.end_at - timedelta(seconds=60)
    after = [s for s in of(history, ev.TwapSliceExecuted) if s.occurred_at >= early.occurred_at]
    assert after and all(s.filled_qty <= D("0.1") * s.forecast_volume for s in after)


async def test_when_the_cap_allows_no_acceleration_the_event_says_so_and_nothing_is_replanned(db_path):
    # 9 BTC/min: the cap absorbs 0.9 BTC/min, the ~26 BTC left need more than the time left
    history = await run_thirty_btc(db_path, "9")
    started = of(history, ev.ExecutionStarted)[0]
    (early,) = of(history, ev.EarlyCompletionTriggered)
    assert early.accelerated is False and early.end_at == early.previous_end_at == started.end_at
    left = D(str((started.end_at - early.occurred_at).total_seconds()))
    assert early.cap_span_seconds is not None and early.cap_span_seconds >= left
    assert early.reason.startswith("no acceleration") and "window end kept" in early.reason
    assert not of(history, ev.ScheduleReplanned)


def test_early_completion_end_uses_the_full_margin_when_it_fits():
    # 5 BTC at 10% of 0.1 BTC/s: 500 s for the cap, 625 s with the 25% margin, 1500 s left
    chosen = early_completion_end(NOW, OLD_END, D("5"), 20, D("0.1"), TwapParams())
    assert chosen.accelerated and chosen.end_at == NOW + timedelta(seconds=625)
    assert chosen.cap_span_seconds == D("500.000") and chosen.nominal_span_seconds == D("200")
    assert "the cap span plus margin" in chosen.reason


def test_early_completion_end_takes_the_nominal_span_when_the_cap_is_loose():
    chosen = early_completion_end(NOW, OLD_END, D("0.5"), 20, D("1"), TwapParams())
    assert chosen.accelerated and chosen.end_at == NOW + timedelta(seconds=200)
    assert "the nominal span" in chosen.reason


def test_early_completion_end_is_strictly_sooner_with_any_headroom():
    # the cap needs 1499 s of the 1500 left: the margin shrinks to half the 1 s headroom
    chosen = early_completion_end(NOW, OLD_END, D("14.99"), 20, D("0.1"), TwapParams())
    assert chosen.accelerated and chosen.end_at == OLD_END - timedelta(seconds=0.5)


def test_early_completion_end_keeps_the_end_without_headroom_or_volume():
    no_headroom = early_completion_end(NOW, OLD_END, D("15"), 20, D("0.1"), TwapParams())
    assert not no_headroom.accelerated and no_headroom.end_at == OLD_END
    unknown = early_completion_end(NOW, OLD_END, D("1"), 20, None, TwapParams())
    assert not unknown.accelerated and unknown.end_at == OLD_END and "unknown" in unknown.reason
    # 200 slices left at 10 s each already need more than the 1500 s left
    dense = early_completion_end(NOW, OLD_END, D("1"), 200, D("1"), TwapParams())
    assert not dense.accelerated and dense.end_at == OLD_END and "10 s apart" in dense.reason


def test_an_early_completion_stored_before_the_figures_existed_still_decodes():
    stored = ('{"arrival_price":"100000","execution_id":"e1","improvement_bps":"30.00",'
              '"occurred_at":"2025-06-10T13:05:00+00:00","price":"99700"}')
    e = decode("EarlyCompletionTriggered", stored)
    assert isinstance(e, ev.EarlyCompletionTriggered) and e.improvement_bps == D("30.00")
    assert e.end_at is None and e.accelerated is None and e.reason == ""
