"""The dashboard's server side: the chart's data on the hand-built history
(tests/analytics_history.py), the page and its files as the API serves them (no token in
the page, a strict Content-Security-Policy, the ``/v1`` routes behind the token check), the
files shipped as package data, and a real daemon with ``--http`` serving the page at ``/``.

The page itself, in a browser: tests/test_dashboard_browser.py (``make browser-test``).
"""

from __future__ import annotations

import http.client
import re
import tomllib
from datetime import datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from genesis.api.access import StoreAccess
from genesis.api.app import ApiDeps, build_app
from genesis.api.tokens import TokenBook, ensure_token_file, load_tokens, token_path
from genesis.config import RuntimeConfig
from genesis.dashboard.market import load_market_view
from genesis.dashboard.routes import STATIC_FILES, dashboard_routes, static_file
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.analytics_history import make_history_db
from tests.test_api_daemon import live_daemon

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_history_db(tmp_path_factory)


@pytest.fixture
async def client(history_db: Path) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    ensure_token_file(token_path(history_db))
    tokens = {t.role: t.token for t in load_tokens(token_path(history_db))}
    deps = ApiDeps(StoreAccess(history_db), TokenBook(token_path(history_db)), lambda: SIM_INSTRUMENTS, RuntimeConfig,
                   lambda: True)
    async with TestClient(TestServer(build_app(deps, dashboard_routes(history_db, token_path(history_db))))) as c:
        yield c, tokens


def test_market_view_of_a_completed_execution_has_the_hand_computed_vwap_series_and_fills(history_db: Path) -> None:
    view = load_market_view(history_db, "exec-a")
    assert view is not None and view["market_source"] == "candles table"
    # cumulative volume-weighted typical price after each candle (typicals 100000, 100030,
    # 100060, 100090 on volumes 10, 20, 30, 40), each at the close of its minute
    assert [(p["at"][11:16], p["vwap"]) for p in view["market_vwap"]] == [
        ("13:01", "100000.00000000"), ("13:02", "100020.00000000"),
        ("13:03", "100040.00000000"), ("13:04", "100060.00000000")]
    assert view["window_market_vwap"] == "100060.00000000"
    assert [(f["qty"], f["price"], f["liquidity"]) for f in view["fills"]] == [
        ("0.25", "100010", "maker"), ("0.25", "100040", "taker"), ("0.2", "100080", "maker"),
        ("0.3", "100110", "taker")]
    # our running average: 100010; 50025/0.5; 70028.5/0.7; 100061.5/1
    assert [f["avg_price"] for f in view["fills"]] == [
        "100010.00000000", "100025.00000000", "100040.71428571", "100061.50000000"]
    assert (view["avg_price"], view["arrival_price"]) == ("100061.50000000", "100000.00000000")
    assert view["slippage_vs_market_vwap_bps"] == "0.1499"  # (100061.5 - 100060) / 100060 * 10,000
    assert view["window"]["planned_end"].startswith("2025-06-10T13:04:00")


def test_market_view_of_a_live_execution_draws_no_minute_that_has_not_closed(history_db: Path) -> None:
    view = load_market_view(history_db, "exec-d")
    assert view is not None and view["state"] == "running"
    as_of = view["window"]["as_of"]
    assert view["candles"], view["market_source"]
    closes = [datetime.fromisoformat(c["open_time"]) + timedelta(minutes=1) for c in view["candles"]]
    assert max(closes) <= datetime.fromisoformat(as_of)
    assert len(view["market_vwap"]) == len(view["candles"]) and len(view["fills"]) == 2


def test_market_view_of_an_unknown_execution_is_none(history_db: Path) -> None:
    assert load_market_view(history_db, "no-such") is None


async def test_the_page_holds_no_token_and_allows_nothing_but_its_own_files(client) -> None:  # type: ignore[no-untyped-def]
    c, tokens = client
    r = await c.get("/")
    body = await r.text()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "/dashboard/dashboard.js" in body and "/dashboard/chart.js" in body
    assert not re.search(r"gen_[A-Za-z0-9_-]{16}", body) and all(t not in body for t in tokens.values())
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert "<script>" not in body and "style=" not in body  # nothing inline: the policy would block it
    for name in ("dashboard.js", "chart.js", "dashboard.css"):
        r = await c.get(f"/dashboard/{name}")
        assert r.status == 200 and r.headers["Content-Type"] == STATIC_FILES[name]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("/dashboard/secrets.json", "/dashboard/..%2Fmarket.py", "/dashboard/index.html"):
        r = await c.get(bad)
        assert r.status == 404 and (await r.json())["fix"] == "open / for the dashboard"


async def test_the_chart_data_and_the_role_need_a_token(client) -> None:  # type: ignore[no-untyped-def]
    c, tokens = client
    assert (await c.get("/v1/executions/exec-a/market")).status == 401
    assert (await c.get("/v1/whoami")).status == 401
    assert (await c.get("/v1/whoami", headers={"Authorization": "Bearer gen_nope"})).status == 401
    for role in ("read", "trader"):
        r = await c.get("/v1/whoami", headers={"Authorization": f"Bearer {tokens[role]}"})
        assert (r.status, await r.json()) == (200, {"role": role})
    read = {"Authorization": f"Bearer {tokens['read']}"}
    r = await c.get("/v1/executions/exec-a/market", headers=read)
    assert r.status == 200 and (await r.json())["window_market_vwap"] == "100060.00000000"
    r = await c.get("/v1/executions/nope/market", headers=read)
    assert r.status == 404 and (await r.json())["field"] == "id"


def test_every_page_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["genesis"]
    shipped = sorted(p.name for p in (ROOT / "genesis" / "dashboard" / "static").iterdir())
    assert shipped == sorted(STATIC_FILES)
    for name in shipped:
        assert any(fnmatch(f"dashboard/static/{name}", pattern) for pattern in patterns), name
        assert static_file(name)


@pytest.mark.slow
def test_the_daemon_serves_the_dashboard_at_the_root_of_its_http_address(tmp_path: Path) -> None:
    with live_daemon(tmp_path) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b'id="token-form"' in response.read()
        conn.close()
