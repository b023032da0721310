"""Alerts through Apprise to a local webhook receiver (an aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal
from datetime import datetime, timedelta, timezone

from aiohttp import web
from aiohttp.test_utils import TestServer

from genesis.config import RuntimeConfig
from genesis.domain import events as ev
from genesis.observability.alert_rules import Alert, DenialBurst, participation_excess
from genesis.observability.alerts import Alerter, AppriseNotifier
from genesis.observability.runtime import ALERT_EVENTS, Observability
from tests.harness import harness


@asynccontextmanager
async def receiver(hang: asyncio.Event | None = None):
    """A webhook receiver: yields (Apprise URL, list of received JSON bodies). With ``hang``,
    every request waits until it is set (a receiver that stopped answering)."""
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        if hang is not None:
            await hang.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"json://127.0.0.1:{server.port}/hook", received
    finally:
        if hang is not None:
            hang.set()
        await server.close()


def alerting(url: str, **alerts: object) -> RuntimeConfig:
    return RuntimeConfig.model_validate({"alerts": {"urls": [url], **alerts}})


async def test_an_expired_short_execution_sends_one_notification_with_its_id(db_path):
    async with receiver() as (url, received):
        config = alerting(url)
        async with harness(db_path, config) as h:
            obs = Observability(lambda: config)
            await obs.start(h.bus, h.store, h.engine, h.venue)
            filled = await h.supervisor.submit(h.request(qty="0.5", duration="5m"))
            # a buy limit far under the market: slices denied by the price collar, the window ends short
            expired = await h.supervisor.submit(h.request(qty="1", duration="5m", limit_price="50000"))
            await h.supervisor.wait_all()
            await h.bus.drain()
            await obs.stop()
            assert (await h.execution_row(expired))["state"] == "expired"
            assert (await h.execution_row(filled))["state"] == "completed"
    assert len(received) == 1
    assert expired in received[0]["message"] and "expired" in received[0]["title"]
    assert received[0]["type"] == "warning"


async def test_a_burst_of_identical_alerts_is_one_notification_and_a_summary():
    async with receiver() as (url, received):
        alerter = Alerter(AppriseNotifier([url]), dedupe_window_seconds=300)
        alerter.start()
        for _ in range(50):
            alerter.raise_alert(Alert("venue_down:sim", "genesis: venue sim is not answering", "timeouts"))
        await alerter.stop()
    assert len(received) == 2
    assert received[0]["message"] == "timeouts"
    assert "49 more" in received[1]["message"] and "x49" in received[1]["title"]
    assert alerter.sent == 2 and alerter.suppressed == 49


class Recorder:
    """A notifier that keeps the titles it is given."""

    def __init__(self):
        self.titles: list[str] = []

    async def send(self, title, body, severity):
        self.titles.append(title)
        return True

    def close(self):
        pass


async def test_the_dedupe_window_closes_and_the_rate_limit_holds():
    now = [0.0]
    recorder = Recorder()
    sent = recorder.titles
    alerter = Alerter(recorder, dedupe_window_seconds=10, max_per_minute=3, monotonic=lambda: now[0])
    alerter.start()
    for key in ("a", "a", "b", "c", "d"):  # d is over the rate
        alerter.raise_alert(Alert(key, key, key))
    while alerter.sent + alerter.suppressed < 5:
        await asyncio.sleep(0)
    now[0] = 11.0  # the windows close: "a" had one duplicate
    alerter.raise_alert(Alert("a", "a", "again"))
    await alerter.stop()
    # a, b, c sent; the duplicate "a" and the rate-limited "d" summarised when their windows
    # close; the late "a" is over the rate too (summaries count towards it): summarised at stop
    assert sent == ["a", "b", "c", "a (x1 more)", "d (x1 more)", "a (x1 more)"]


async def test_a_receiver_that_hangs_does_not_hold_the_engine(db_path):
    hang = asyncio.Event()
    async with receiver(hang) as (url, received):
        config = alerting(url, queue_size=2, send_timeout_seconds=60, risk_denial_burst_count=2)
        async with harness(db_path, config) as h:
            obs = Observability(lambda: config)
            await obs.start(h.bus, h.store, h.engine, h.venue)
            ids = [await h.supervisor.submit(h.request(qty="1", duration="5m", limit_price="50000", request_id=f"r{i}"))
                   for i in range(6)]
            await h.supervisor.wait_all()
            await h.bus.drain()
            # every execution ran to its end and every event reached the alert rules, while the
            # one notification in flight hung and the alerts behind it overflowed their queue
            for eid in ids:
                history = [s.event for s in await h.store.read(eid)
                           if not isinstance(s.event, ev.SliceParticipationMeasured)]  # may follow the end
                assert type(history[-1]) is ev.TwapCompleted and history[-1].reason == "window_ended"
            stored = [s.event for s in await h.store.read()]
            assert h.bus.stats()["alerts"]["delivered"] == sum(type(e) in ALERT_EVENTS for e in stored)
            assert h.bus.stats()["alerts"]["dropped"] == 0
            assert len(received) <= 1 and obs.alerter.sent == 0  # the first send hangs in its thread
            assert obs.alerter.dropped > 0
            hang.set()
            await obs.stop()
    assert obs.alerter.sent >= 2


def test_participation_breach_needs_more_than_a_lot_step_over_the_cap():
    at = datetime(2025, 6, 10, tzinfo=timezone.utc)

    def slice_(participation: str, volume: str = "10") -> ev.SliceParticipationMeasured:
        return ev.SliceParticipationMeasured("e1", at, 0, market_volume=Decimal(volume),
                                             participation=Decimal(participation))

    cap, step = Decimal("0.10"), Decimal("0.001")
    assert participation_excess(slice_("0.1001"), cap, step) is None  # 0.001 over: one step, not more
    assert participation_excess(slice_("0.1002"), cap, step) == Decimal("0.0020")
    assert participation_excess(slice_("0.5", volume="0"), cap, step) is None
    assert participation_excess(slice_("0.5"), cap, step, cap_overridden=True) is None  # emergency: by design


def test_risk_denial_burst_needs_n_within_t_seconds():
    burst = DenialBurst(3, 60)
    at = datetime(2025, 6, 10, tzinfo=timezone.utc)

    def denied(seconds: int) -> ev.RiskDenied:
        return ev.RiskDenied("e1", at + timedelta(seconds=seconds), 0, Decimal(1), Decimal(1), "risk.price_collar_bps")

    assert [burst.add(denied(s)) is not None for s in (0, 30, 100, 110, 120, 125)] == [
        False, False, False, False, True, False]


def test_alert_urls_are_checked_with_a_message_naming_the_entry():
    import pytest

    from genesis.config import ConfigError, parse_config
    from genesis.observability.alerts import AlertsSetupError

    with pytest.raises(ConfigError, match=r"alerts.urls: .*entry 0 is not a URL"):
        parse_config({"alerts": {"urls": ["hooks.example.com"]}})
    with pytest.raises(AlertsSetupError, match=r"alerts.urls\[1\]: not a URL Apprise can send to"):
        AppriseNotifier(["json://127.0.0.1:1/x", "nosuchscheme://secret-token"])
    assert parse_config({}).alerts.urls == ()  # off by default


async def test_refused_store_commits_alert_once_count_and_clear_readiness(tmp_path):
    from genesis.observability.health import readiness
    from tests.test_storage_faults import CONFIG, HEAL_AFTER_FAILURES, Fault

    recorder = Recorder()
    titles = recorder.titles
    fault = Fault(lambda c: c.execute("PRAGMA query_only=ON"), lambda c: c.execute("PRAGMA query_only=OFF"))
    async with harness(tmp_path / "genesis.db", CONFIG, commit_in="thread") as h:
        obs = Observability(lambda: CONFIG, notifier=recorder)
        await obs.start(h.bus, h.store, h.engine, h.venue)
        fault.install(h.store.writer_engine)
        await h.supervisor.submit(h.request(qty="1.2", duration="10m", slices=6))
        await h.supervisor.wait_all()
        await h.bus.drain()
        ready, details = await readiness(obs.readiness_checks)
        await obs.stop()
        text = obs.metrics.render()[0].decode()
    refused = int(next(float(line.split()[1]) for line in text.splitlines()
                       if line.startswith("genesis_store_commit_failures_total ")))
    assert fault.healed and refused >= HEAL_AFTER_FAILURES
    assert titles == ["genesis: store commit failed", f"genesis: store commit failed (x{refused - 1} more)"]
    assert ready and details["store"]["ok"]  # committed again after the fault healed
