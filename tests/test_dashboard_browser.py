"""The dashboard in a real browser: headless Chromium from Debian (``/usr/bin/chromium``, or
``$GENESIS_CHROMIUM``) driven by Playwright, against a real daemon (``genesis run --venue sim
--speed 15 --http``) on a temporary database.

A trader opens the page, enters the token, watches a TWAP's progress advance live, clicks
Pause, and the database says ``paused``. A read token sees the same board without buttons.
The page is saved as a PNG (``$GENESIS_DASHBOARD_SCREENSHOT``, default in the test's temp
directory) for a person to look at.

Deselected by default (marker ``browser``): ``make browser-test`` installs Chromium and
Playwright and runs it. Every wait is a poll with a generous deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_api_daemon import LiveApi
from tests.test_daemon_process import wait_for
from tests.test_dashboard import live_daemon

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the [browser] extra: make browser-test")

CHROMIUM = os.environ.get("GENESIS_CHROMIUM", "/usr/bin/chromium")
SPEED = "15"  # a 30-minute window lasts two wall minutes: time to watch it move, then pause it
UI_TIMEOUT_MS = 30_000


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApi]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make browser-test` installs Debian's chromium")
    with live_daemon(tmp_path, SPEED) as api:
        yield api


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def progress_pct(row: Any) -> float:
    return float(row.locator(".progress-text").inner_text().rstrip("%"))


def open_dashboard(browser: Any, live: LiveApi, role: str) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(live.url + "/")
    page.locator("#token").fill(live.tokens[role])
    page.locator("#token-submit").click()
    sync_api.expect(page.locator("#board")).to_be_visible(timeout=UI_TIMEOUT_MS)
    return page


def test_a_trader_watches_progress_live_and_pauses_from_the_page(live: LiveApi, browser: Any,
                                                                 tmp_path: Path) -> None:
    execution_id = live.submit(qty="2", duration="30m", client_request_id="browser-1")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(live.url + "/")
    html = page.content()
    assert live.tokens["trader"] not in html and live.tokens["read"] not in html
    sync_api.expect(page.locator("#sign-in")).to_be_visible()
    page.locator("#token").fill(live.tokens["trader"])
    page.locator("#token-submit").click()
    sync_api.expect(page.locator("#role")).to_have_text("trader", timeout=UI_TIMEOUT_MS)
    assert page.evaluate("sessionStorage.getItem('genesis.api_token')") == live.tokens["trader"]

    row = page.locator(f'tr[data-execution-id="{execution_id}"]')
    sync_api.expect(row.locator("td.state")).to_have_text("running", timeout=UI_TIMEOUT_MS)
    sync_api.expect(page.locator("#stream-status")).to_have_text("live", timeout=UI_TIMEOUT_MS)
    first = progress_pct(row)
    wait_for(lambda: progress_pct(row) > max(first, 10.0), f"the page's progress to advance past {first}% and 10%",
             timeout=60, context=live.daemon.tail)
    # the first candle inside the window closes a minute or two (simulated) after the start
    wait_for(lambda: page.locator("#chart .fills circle").count() > 0 and page.locator("#chart path.vwap").count(),
             "the chart to show fills and the market VWAP", context=live.daemon.tail)

    row.locator('button[data-action="pause"]').click()
    live.daemon.wait(lambda: live.ws.state(execution_id) == "paused", "state paused in the database")
    sync_api.expect(row.locator("td.state")).to_have_text("paused", timeout=UI_TIMEOUT_MS)
    sync_api.expect(row.locator('button[data-action="resume"]')).to_be_visible(timeout=UI_TIMEOUT_MS)
    paused_at = progress_pct(row)
    time.sleep(4)  # 60 simulated seconds: a running TWAP would have traded again
    assert live.ws.state(execution_id) == "paused" and progress_pct(row) == paused_at

    shot = Path(os.environ.get("GENESIS_DASHBOARD_SCREENSHOT", tmp_path / "dashboard.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"dashboard screenshot: {shot}")

    reader = open_dashboard(browser, live, "read")
    sync_api.expect(reader.locator("#role")).to_have_text("read only", timeout=UI_TIMEOUT_MS)
    read_row = reader.locator(f'tr[data-execution-id="{execution_id}"]')
    sync_api.expect(read_row.locator("td.state")).to_have_text("paused", timeout=UI_TIMEOUT_MS)
    assert reader.locator("button[data-action]").count() == 0


def test_a_wrong_token_is_refused_and_nothing_is_kept(live: LiveApi, browser: Any) -> None:
    page = browser.new_page()
    page.goto(live.url + "/")
    page.locator("#token").fill("gen_not-a-token")
    page.locator("#token-submit").click()
    sync_api.expect(page.locator("#sign-in-error")).to_contain_text("unknown token", timeout=UI_TIMEOUT_MS)
    assert page.evaluate("sessionStorage.getItem('genesis.api_token')") is None
    assert page.locator("#board").is_hidden()
