"""Patch v7.4_C1 section 6: the router's five tests, on the virtual clock instead of a
patched ``time.sleep``, plus maker-first routing and the router metrics view."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from genesis.config import ConfigError, RuntimeConfig, get_twap_config, load_config, parse_config
from genesis.domain import events as ev
from genesis.domain.router import decide_route
from genesis.requests import ALGOS
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness
from tests.market import HISTORY_DAYS, T0, flat, series, venue

D = Decimal
BTC = SIM_INSTRUMENTS["BTC/USDT"]
PRICE = D("100000")
START = T0 + timedelta(days=HISTORY_DAYS, hours=1)
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config" / "runtime.yaml"


def router_config(**twap) -> RuntimeConfig:  # type: ignore[no-untyped-def]
    cfg = {"enabled": True, "min_notional_usd": 500, "slices": 4, "interval_seconds": 10}
    cfg.update(twap)
    return parse_config({"router": {"twap": cfg, "maker_timeout_seconds": 2}})


def market(clock):  # type: ignore[no-untyped-def]
    return venue(clock, series(HISTORY_DAYS + 1, flat("100000"), flat("20")))


async def route(db_path, qty: str, config: RuntimeConfig, algo: str = "auto"):  # type: ignore[no-untyped-def]
    async with harness(db_path, config, start=START, venue=market) as h:
        execution_id = await h.supervisor.submit(h.request(qty=qty, algo=algo, duration=None))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
        async with h.engine.connect() as conn:
            metrics = dict((await conn.execute(text("SELECT * FROM router_metrics"))).mappings().one())
        return history, metrics


def of(history, cls):  # type: ignore[no-untyped-def]
    return [e for e in history if isinstance(e, cls)]


async def test_below_threshold_goes_single(db_path):
    history, metrics = await route(db_path, "0.003", router_config())  # 300 USD < 500
    submitted = history[0]
    assert submitted.execution_style == "single" and submitted.algo == "single"
    intents = of(history, ev.OrderIntended)
    assert {i.execution_style for i in intents} == {"single"} and {i.slice_index for i in intents} == {0}
    assert sum(f.qty for f in of(history, ev.FillRecorded)) == D("0.003")
    assert metrics["single_trades_count"] == 1 and metrics["twap_trades_count"] == 0


async def test_above_threshold_twaps_into_exactly_n_children_summing_to_total(db_path):
    history, metrics = await route(db_path, "0.01", router_config())  # 1000 USD >= 500, 4 slices
    slices = of(history, ev.TwapSliceExecuted)
    assert len(slices) == 4 and all(s.execution_style == "twap" for s in slices)
    assert sum(s.filled_qty for s in slices) == D("0.01")
    intents = of(history, ev.OrderIntended)
    assert {i.execution_style for i in intents} == {"twap"}
    assert {i.slice_count for i in intents} == {4} and {i.slice_index for i in intents} == {0, 1, 2, 3}
    assert all(i.parent_gross_usd == D("0.01") * PRICE for i in intents)
    assert intents[0].twap_config == {"router_interval_seconds": "10.0", "router_min_notional_usd": "500",
                                      "router_slices": "4"}
    assert metrics["twap_trades_count"] == 4 and metrics["single_trades_count"] == 0


def test_min_notional_sanity_reduces_slices_then_falls_back_to_single():
    # min notional 5 USDT at 100,000: 0.00005 BTC minimum per slice
    reduced = decide_route(D("0.00018"), PRICE, BTC, enabled=True, min_notional_usd=D("0"), slices=4,
                           interval_seconds=10)
    assert (reduced.execution_style, reduced.slices) == ("twap", 3) and "reduced from 4 to 3" in reduced.warning
    single = decide_route(D("0.00009"), PRICE, BTC, enabled=True, min_notional_usd=D("0"), slices=4,
                          interval_seconds=10)
    assert (single.execution_style, single.slices) == ("single", 1) and "even 2 slices" in single.warning
    # deterministic
    assert reduced == decide_route(D("0.00018"), PRICE, BTC, enabled=True, min_notional_usd=D("0"), slices=4,
                                   interval_seconds=10)


async def test_min_notional_sanity_end_to_end(db_path):
    history, _ = await route(db_path, "0.00018", router_config(min_notional_usd=0))
    slices = of(history, ev.TwapSliceExecuted)
    assert len(slices) == 3 and all(s.filled_qty * PRICE >= BTC.min_notional for s in slices)
    assert sum(s.filled_qty for s in slices) == D("0.00018")


async def test_config_off_means_single(db_path):
    history, _ = await route(db_path, "0.05", router_config(enabled=False))
    assert history[0].execution_style == "single" and len(of(history, ev.TwapSliceExecuted)) == 1


@pytest.mark.parametrize("interval, gaps", [(10, [10.0, 10.0, 10.0]), (0, [0.0, 0.0, 0.0])])
async def test_interval_spacing_n_minus_1_gaps_or_none(db_path, interval, gaps):
    history, _ = await route(db_path, "0.01", router_config(interval_seconds=interval))
    times = [p.scheduled_at for p in of(history, ev.ExecutionStarted)[0].slices]
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:])] == gaps


async def test_algo_single_forces_one_order_even_when_twap_would_apply(db_path):
    history, _ = await route(db_path, "0.05", router_config(), algo="single")
    assert history[0].execution_style == "single" and len(of(history, ev.TwapSliceExecuted)) == 1


async def test_maker_first_posts_at_the_touch_then_takes_the_rest(db_path):
    history, _ = await route(db_path, "0.003", router_config())
    intents = of(history, ev.OrderIntended)
    assert [(i.order_type, i.time_in_force) for i in intents][0] == ("limit", "post_only")
    top_bid = intents[0].limit_price
    assert top_bid < intents[0].reference_price  # a buy rests at the bid, below the mid
    (s,) = of(history, ev.TwapSliceExecuted)
    assert s.maker_qty + s.taker_qty == s.filled_qty == D("0.003")
    if s.taker_qty:
        assert [(i.order_type) for i in intents][1] == "market"


def test_twap_config_loader_defaults_clamps_and_rejects():
    assert get_twap_config(parse_config({})) == get_twap_config(parse_config({"router": {}}))
    cfg = get_twap_config(parse_config({}))
    assert (cfg.enabled, cfg.min_notional_usd, cfg.slices, cfg.interval_seconds) == (False, D("0"), 1, 0.0)
    assert get_twap_config(parse_config({"router": {"twap": {"slices": 0}}})).slices == 1
    assert get_twap_config(parse_config({"router": {"twap": {"enabled": True}}})).slices == 1  # partial
    with pytest.raises(ConfigError, match="router.twap.interval_seconds"):
        parse_config({"router": {"twap": {"interval_seconds": -1}}})
    with pytest.raises(ConfigError, match="router.twap.min_notional_usd"):
        parse_config({"router": {"twap": {"min_notional_usd": "lots"}}})
    with pytest.raises(ConfigError, match="router.twap.slices"):
        parse_config({"router": {"twap": {"slices": "four"}}})


async def test_the_shipped_config_routes_auto_orders_by_notional(db_path, tmp_path):
    """Out of the box (config/runtime.yaml as shipped) --algo auto TWAPs a parent at or above
    router.twap.min_notional_usd and sends a smaller one as a single order."""
    shipped = load_config(SHIPPED_CONFIG)
    cfg = get_twap_config(shipped)
    assert cfg.enabled and cfg.slices > 1 and cfg.interval_seconds > 0
    large = str((cfg.min_notional_usd / PRICE).quantize(D("0.00001")))  # exactly the threshold
    history, metrics = await route(db_path, large, shipped)
    assert history[0].execution_style == "twap" and history[0].algo == "twap"
    slices = of(history, ev.TwapSliceExecuted)
    assert len(slices) == cfg.slices and sum(s.filled_qty for s in slices) == D(large)
    assert metrics["twap_trades_count"] == cfg.slices
    small = str((cfg.min_notional_usd / PRICE - D("0.00001")).quantize(D("0.00001")))  # just below
    history, _ = await route(tmp_path / "small.db", small, shipped)
    assert history[0].execution_style == "single" and len(of(history, ev.TwapSliceExecuted)) == 1


async def test_router_metrics_count_every_algorithm_in_its_own_bucket(db_path):
    config = router_config()
    async with harness(db_path, config) as h:  # the shipped candles: 20 days of history for VWAP's curve
        for algo, qty, duration in (("vwap", "0.01", "5m"), ("twap", "0.01", "5m"), ("auto", "0.003", None)):
            await h.supervisor.submit(h.request(qty=qty, algo=algo, duration=duration))
        await h.supervisor.wait_all()
        async with h.engine.connect() as conn:
            metrics = dict((await conn.execute(text("SELECT * FROM router_metrics"))).mappings().one())
            traded = dict((await conn.execute(text(
                "SELECT e.algo, COUNT(*) FROM execution_slices s JOIN executions e USING (execution_id) "
                "WHERE CAST(s.filled_qty AS REAL) > 0 GROUP BY e.algo"))).all())
    assert set(traded) == {"twap", "vwap", "single"} and traded["single"] == 1
    for algo in set(ALGOS) - {"auto", "pov", "is"}:  # auto is recorded as twap or single; the view's buckets
        assert metrics[f"{algo}_trades_count"] == traded[algo], algo
        assert metrics[f"{algo}_avg_slippage_bps"] is not None, algo
    assert sum(v for k, v in metrics.items() if k.endswith("_trades_count")) == sum(traded.values())
