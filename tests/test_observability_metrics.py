"""Metrics: a run on the simulated venue (virtual clock), then /metrics against the database."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from genesis.config import RuntimeConfig
from genesis.observability.metrics import MetricsCollector, risk_reason_class
from genesis.observability.runtime import Observability
from genesis.store import tables as t
from tests.harness import harness


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def by_label(values: dict, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in values.items() if n == name and v}


async def test_metrics_after_a_run_equal_the_database(db_path):
    async with harness(db_path) as h:
        obs = Observability(lambda: h.config)
        await obs.start(h.bus, h.store, h.engine, h.venue)
        filled = await h.supervisor.submit(h.request(qty="2.5", duration="15m"))
        # a buy limit far under the market: its slices are denied by the price collar, it expires short
        expired = await h.supervisor.submit(h.request(qty="1", duration="5m", limit_price="50000"))
        await h.supervisor.wait_all()
        await h.bus.drain()
        await obs.metrics.refresh()
        body, content_type = obs.metrics.render()
        await obs.stop()

        async with h.engine.connect() as conn:
            fills = (await conn.execute(select(t.fills.c.qty, t.fills.c.price))).all()
            slice_rows = (await conn.execute(select(t.execution_slices.c.status))).scalars().all()
            order_rows = (await conn.execute(select(t.child_orders.c.status))).scalars().all()
            states = dict((await conn.execute(select(t.executions.c.execution_id, t.executions.c.state))).all())
            denials = (await conn.execute(select(t.execution_slices.c.risk_reason)
                                          .where(t.execution_slices.c.status == "denied"))).scalars().all()

    assert content_type.startswith("text/plain")
    values = samples(body.decode())
    assert states == {filled: "completed", expired: "expired"}
    notional = sum(q * p for q, p in fills)
    assert notional > 0
    assert values[("genesis_filled_notional_usdt_total", ())] == pytest.approx(float(notional), rel=1e-12)
    db_slices = Counter(slice_rows)
    assert db_slices["denied"] > 0 and db_slices["filled"] > 0
    assert by_label(values, "genesis_slices_total", "outcome") == {k: float(v) for k, v in db_slices.items()}
    assert by_label(values, "genesis_child_orders_total", "outcome") == {
        k: float(v) for k, v in Counter(order_rows).items()}
    executions = {dict(labels)["state"]: v for (n, labels), v in values.items() if n == "genesis_executions"}
    assert executions["completed"] == 1 and executions["expired"] == 1 and executions["running"] == 0
    assert by_label(values, "genesis_risk_denials_total", "reason") == {
        k: float(v) for k, v in Counter(risk_reason_class(r) for r in denials).items()}
    assert set(by_label(values, "genesis_risk_denials_total", "reason")) == {"price_collar_bps"}
    assert values[("genesis_implementation_shortfall_bps_count", (("algo", "twap"),))] == 1.0
    assert values[("genesis_executions_finished_total", (("state", "expired"),))] == 1.0
    assert values[("genesis_store_commit_seconds_count", ())] > 0
    assert ("genesis_store_queued_appends", ()) in values
    assert values[("genesis_bus_dropped_events_total", (("subscriber", "metrics"),))] == 0


def test_risk_reasons_become_their_config_key():
    assert risk_reason_class("kill switch is on (risk.kill_switch in the config)") == "kill_switch"
    assert risk_reason_class("position 101 BTC/USDT after this slice would exceed "
                             "risk.max_position_base[BTC/USDT] 100") == "max_position_base"
    assert risk_reason_class("something new") == "other"


def test_collector_registries_are_independent():
    one, two = Observability(RuntimeConfig), Observability(RuntimeConfig)
    one.metrics.risk_denials.labels("kill_switch").inc()
    assert b'genesis_risk_denials_total{reason="kill_switch"} 1.0' in one.metrics.render()[0]
    assert b"kill_switch" not in two.metrics.render()[0]


async def test_a_store_that_cannot_be_read_still_leaves_a_whole_scrape(tmp_path):
    from genesis.store.db import async_engine

    engine = async_engine(tmp_path / "missing-dir" / "g.db")
    obs = Observability(RuntimeConfig)
    obs.metrics.watch(engine)
    obs.metrics.slices.labels("filled", "twap").inc()
    await obs.metrics.refresh()
    await engine.dispose()
    values = samples(obs.metrics.render()[0].decode())
    assert values[("genesis_metrics_store_read_failures_total", ())] == 1.0
    assert values[("genesis_slices_total", (("algo", "twap"), ("outcome", "filled")))] == 1.0
    assert values[("genesis_executions", (("state", "running"),))] == 0.0


async def test_quality_histograms_are_labelled_with_each_executions_algorithm(db_path):
    """A POV and a TWAP completion land under their own algorithm; a completion the collector
    saw without the submission (submitted before a restart) is labelled from the store."""
    from genesis.domain.events import TwapCompleted
    from tests.test_pov_algorithm import POV

    async with harness(db_path) as h:
        obs = Observability(lambda: h.config)
        await obs.start(h.bus, h.store, h.engine, h.venue)
        pov = await h.supervisor.submit(h.request(qty="0.5", algo="pov", duration="30m", options=POV))
        twap = await h.supervisor.submit(h.request(qty="0.5", duration="15m"))
        await h.supervisor.wait_all()
        await h.bus.drain()
        restarted = MetricsCollector()  # a new process: it never saw the submissions
        completions = [stored.event for stored in await h.store.read()
                       if isinstance(stored.event, TwapCompleted)]
        for event in completions:
            restarted.on_event(event)
        restarted.watch(engine=h.engine)
        await obs.metrics.refresh()
        await restarted.refresh()
        live = samples(obs.metrics.render()[0].decode())
        after_restart = samples(restarted.render()[0].decode())
        await obs.stop()
        states = {r["execution_id"]: r["state"] for r in await h.rows(t.executions)}

    assert states == {pov: "completed", twap: "completed"}
    assert len(completions) == 2
    for values in (live, after_restart):
        assert by_label(values, "genesis_implementation_shortfall_bps_count", "algo") == {"pov": 1.0, "twap": 1.0}
