"""The daemon wires metrics and alerts: in process, on the simulated venue."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from genesis.config import parse_config
from genesis.engine.daemon import Daemon, DaemonError, DaemonOptions


async def test_the_daemon_serves_metrics_from_its_bus_and_store(tmp_path):
    config = parse_config({"engine": {"command_poll_seconds": 0.05}})
    daemon = Daemon(DaemonOptions(tmp_path / "g.db", None, pidfile=False), config)
    run = asyncio.create_task(daemon.run())
    for _ in range(600):
        if "metrics" in getattr(getattr(daemon, "bus", None), "stats", dict)():
            break
        await asyncio.sleep(0.05)
    assert "metrics" in daemon.bus.stats() and "alerts" not in daemon.bus.stats()  # alerts off: no urls
    await asyncio.sleep(0.6)  # one loop-lag sample
    await daemon.observability.metrics.refresh()
    text = daemon.observability.metrics.render()[0].decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {"genesis_executions", "genesis_event_loop_lag_seconds_count", "genesis_store_queued_appends",
            "genesis_bus_queued_events"} <= names
    assert daemon.venue.wrapped is not daemon.venue  # the venue's calls are watched
    daemon.stop_event.set()
    assert await run == 0


async def test_an_alert_url_apprise_cannot_use_stops_the_daemon_before_the_database(tmp_path):
    config = parse_config({"alerts": {"urls": ["nosuchscheme://token"]}})
    daemon = Daemon(DaemonOptions(tmp_path / "g.db", None, pidfile=False), config)
    with pytest.raises(DaemonError, match=r"alerts.urls\[0\]"):
        await daemon.run()
    assert not (tmp_path / "g.db").exists()
