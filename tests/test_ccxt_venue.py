"""CcxtVenue on recorded Binance traffic (vcrpy cassettes in tests/cassettes, see README there),
plus the pieces around it: error mapping, order budget, credentials and log redaction."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import ccxt.async_support as ccxt
import pytest
import structlog
import vcr
import yaml

from genesis.clock import VirtualClock, WallClock
from genesis.domain.instrument import Instrument
from genesis.domain.orders import (BookTop, Fill, Liquidity, OrderRequest, OrderStatus, OrderType,
                                   Side, TimeInForce)
from genesis.venue.base import (DuplicateOrderError, PermanentVenueError, RetryableVenueError,
                                UnknownOutcomeError)
from genesis.venue.ccxt_errors import map_ccxt_error, retry_after_seconds
from genesis.venue.ccxt_support import build_exchange, dec, override_urls
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import (REDACTED, Credentials, CredentialsError, load_credentials,
                                       redact_secrets, register_secret)
from genesis.venue.order_budget import OrderBudget, account_key, shared_budget

CASSETTES = Path(__file__).parent / "cassettes"
SHARED = Path(os.environ.get("GENESIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared"
                             / "data" / "exchange_responses"))  # ../shared next to the repo
AIOBINANCE = SHARED / "vcr_cassettes" / "aiobinance_binance"
SKIP_KEYS = {"timestamp", "recvWindow", "signature", "newClientOrderId", "newClientStrategyId"}
PER_PATH_SKIP = {"/api/v3/depth": {"limit"}, "/api/v3/klines": {"startTime", "endTime", "limit"}}
UTC = timezone.utc
CID = "g0123456789ab-0-0"
FAST = {"rateLimit": 1, "timeout_on_exit": 0}  # ccxt limiter on, but no 50 ms per weight unit


def _params(request: Any) -> dict[str, str]:
    params = dict(parse_qsl(urlsplit(request.uri).query, keep_blank_values=True))
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    if body:
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def binance_matcher(extra_skip: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    """Method, host, path and every parameter (query or form body) except the volatile ones."""
    def match(r1: Any, r2: Any) -> None:
        u1, u2 = urlsplit(r1.uri), urlsplit(r2.uri)
        assert (r1.method, u1.netloc, u1.path) == (r2.method, u2.netloc, u2.path)
        skip = SKIP_KEYS | PER_PATH_SKIP.get(u1.path, set()) | extra_skip
        p1 = {k: v for k, v in _params(r1).items() if k not in skip}
        p2 = {k: v for k, v in _params(r2).items() if k not in skip}
        assert p1 == p2, f"{p1} != {p2}"
    return match


def recorder(directory: Path = CASSETTES, extra_skip: frozenset[str] = frozenset()) -> vcr.VCR:
    v = vcr.VCR(cassette_library_dir=str(directory), record_mode="none", match_on=["binance"])
    v.register_matcher("binance", binance_matcher(extra_skip))
    return v


VCR = recorder()


@pytest.fixture
async def venue():  # type: ignore[no-untyped-def]
    """A Binance CcxtVenue with markets loaded from the recorded 2020 exchangeInfo."""
    clock = VirtualClock(datetime(2020, 12, 6, 17, 30, tzinfo=UTC))  # during the last kline
    v = CcxtVenue("binance", credentials=Credentials("test-api-key-1", "test-api-secret-1"),
                  clock=clock, budget=OrderBudget(limit=5, clock=clock), config=FAST)
    with VCR.use_cassette("binance_markets.yaml"):
        await v.instruments()
    yield v
    await v.close()


def sent_bodies(v: CcxtVenue) -> list[dict[str, str]]:
    """Record the parameters of every request the venue's ccxt client sends."""
    seen: list[dict[str, str]] = []
    original = v.ex.fetch

    async def spy(url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
        query = dict(parse_qsl(urlsplit(url).query))
        query.update(parse_qsl(body or ""))
        seen.append({"method": method, "path": urlsplit(url).path, **query})
        return await original(url, method, headers, body)

    v.ex.fetch = spy
    return seen


def sol_limit(cid: str = CID, tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(cid, "SOL/USDT", Side.BUY, OrderType.LIMIT, D("0.05"), D("241"), tif)


# ---------------------------------------------------------------------- recorded traffic
async def test_load_markets_gives_instrument_rules(venue: CcxtVenue) -> None:
    rules = await venue.instruments()  # cached by ccxt: no further request
    assert sorted(rules) == ["BTC/USDT", "ETH/USDT", "LTC/USDT", "SOL/USDT"]
    assert rules["BTC/USDT"] == Instrument("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.000001"),
                                           D("0.000001"), D("10"), D("9000"))
    ltc = rules["LTC/USDT"]
    assert (ltc.tick_size, ltc.step_size, ltc.min_notional) == (D("0.01"), D("0.00001"), D("10"))


async def test_order_book_top_is_exact_decimal(venue: CcxtVenue) -> None:
    with VCR.use_cassette("binance_order_book.yaml"):
        top = await venue.book_top("BTC/USDT")
    assert top == BookTop(D("19141.85"), D("19141.86"), venue.clock.now())


async def test_klines_are_paged_exact_and_closed_only(venue: CcxtVenue) -> None:
    start = datetime(2020, 11, 15, 21, 0, tzinfo=UTC)  # first recorded hourly candle
    end = datetime(2020, 12, 6, 18, 0, tzinfo=UTC)  # one hour after the last one opened
    assert venue.clock.now() == datetime(2020, 12, 6, 17, 30, tzinfo=UTC)  # last one still open
    with VCR.use_cassette("binance_klines.yaml"):
        candles = await venue.candles("BTC/USDT", start, end, timeframe="1h")
    assert len(candles) == 499
    first = candles[0]
    assert (first.open_time, first.open, first.high, first.low, first.close, first.volume) == (
        start, D("15845.1"), D("15907.8"), D("15821.44"), D("15848.67"), D("1417.820972"))
    assert candles[-1].open_time == datetime(2020, 12, 6, 16, 0, tzinfo=UTC)


async def test_create_limit_order_sends_client_id_and_takes_budget(venue: CcxtVenue) -> None:
    seen = sent_bodies(venue)
    with VCR.use_cassette("binance_create_order.yaml"):
        report = await venue.place_order(sol_limit())
    assert (report.client_order_id, report.venue_order_id, report.status, report.filled_qty,
            report.fills) == (CID, "9780331417", OrderStatus.OPEN, D(0), ())
    assert seen[0]["newClientOrderId"] == CID and seen[0]["type"] == "LIMIT"
    assert seen[0]["timeInForce"] == "GTC" and "signature" in seen[0]
    assert venue.budget.available() < 5


async def test_client_id_outside_binance_rule_is_refused_before_sending(venue: CcxtVenue) -> None:
    seen = sent_bodies(venue)
    with pytest.raises(PermanentVenueError, match="newClientOrderId|Binance's rule"):
        await venue.place_order(sol_limit(cid="g" * 37))
    with pytest.raises(PermanentVenueError):
        await venue.place_order(sol_limit(cid="has space"))
    assert seen == []


async def test_fetch_open_order_by_client_id(venue: CcxtVenue) -> None:
    seen = sent_bodies(venue)
    with VCR.use_cassette("binance_fetch_order_open.yaml"):
        report = await venue.fetch_order("LTC/USDT", CID)
    assert (report.venue_order_id, report.status, report.filled_qty) == ("3811057334",
                                                                         OrderStatus.OPEN, D(0))
    assert seen[0]["origClientOrderId"] == CID and "orderId" not in seen[0]


async def test_filled_order_whose_trades_are_not_visible_yet_is_retryable(venue: CcxtVenue) -> None:
    # the recorded FILLED order (0.1 LTC) paired with a trade list of another order: the
    # venue must not report a final order whose fills do not add up
    with VCR.use_cassette("binance_fetch_order_filled.yaml"):
        with pytest.raises(RetryableVenueError, match="0.1 filled but its trades add up to 0"):
            await venue.fetch_order("LTC/USDT", CID)


async def test_my_trades_become_fills(venue: CcxtVenue) -> None:
    with VCR.use_cassette("binance_my_trades.yaml"):
        fills = await venue.fetch_fills("LTC/USDT", "3784695242")
    assert fills == [Fill("309520010", "", D("0.2"), D("69.63"), D("0.013926"), "USDT",
                          Liquidity.TAKER, datetime(2023, 10, 24, 9, 16, 32, 358000, tzinfo=UTC))]


async def test_cancel_by_client_id(venue: CcxtVenue) -> None:
    with VCR.use_cassette("binance_cancel_order.yaml"):
        report = await venue.cancel_order("LTC/USDT", CID)
    assert (report.venue_order_id, report.status, report.filled_qty) == (
        "3854801792", OrderStatus.CANCELLED, D(0))


async def test_cancel_of_unknown_order_looks_it_up(venue: CcxtVenue) -> None:
    with VCR.use_cassette("binance_error_unknown_order.yaml"):  # -2011 then -2013
        report = await venue.cancel_order("LTC/USDT", CID)
    assert report.status is OrderStatus.NOT_FOUND and report.venue_order_id is None


async def test_balance_is_exact_decimal(venue: CcxtVenue) -> None:
    with VCR.use_cassette("binance_balance.yaml"):
        balances = await venue.balances()
    assert balances == {"BTC": D("0"), "LTC": D("0.919741"), "ETH": D("0.02229833")}


@pytest.mark.parametrize("cassette, error, text, retry_after", [
    ("binance_error_duplicate.yaml", DuplicateOrderError, "Duplicate order sent", None),
    ("binance_error_insufficient_balance.yaml", PermanentVenueError, "InsufficientFunds", None),
    ("binance_error_429.yaml", RetryableVenueError, "429", 7.0),
    ("binance_error_418.yaml", RetryableVenueError, "418", 120.0),
])
async def test_error_bodies_map_to_engine_errors(venue: CcxtVenue, cassette: str, error: type,
                                                 text: str, retry_after: float | None) -> None:
    with VCR.use_cassette(cassette):
        with pytest.raises(error, match=text) as info:
            await venue.place_order(sol_limit())
    assert type(info.value) is error
    if retry_after is not None:
        assert info.value.retry_after_seconds == retry_after


async def test_invalid_timestamp_resyncs_time_then_is_retryable(venue: CcxtVenue) -> None:
    venue.ex.options["timeDifference"] = 0
    with VCR.use_cassette("binance_error_timestamp.yaml") as cassette:
        with pytest.raises(RetryableVenueError, match="InvalidNonce"):
            await venue.place_order(sol_limit())
        assert cassette.play_count == 2  # the order, then GET /api/v3/time
    server_time_ms = 1603732575742  # serverTime of the recorded exchangeInfo
    assert abs(venue.ex.nonce() - server_time_ms) < 60_000  # nonce now follows the server clock


# ---------------------------------------------------------------------- GPL data, in place
def _decoded_cassette(source: Path, target: Path) -> Path:
    """Copy a python-requests cassette to ``target`` (tmp) with gzip bodies decoded."""
    loader = getattr(yaml, "CLoader", yaml.Loader)  # full loader: the bodies are !!binary
    data = yaml.load(source.read_text(), Loader=loader)
    for it in data["interactions"]:
        body = it["response"]["body"]["string"]
        if isinstance(body, bytes) and body[:2] == b"\x1f\x8b":
            it["response"]["body"]["string"] = gzip.decompress(body).decode()
        it["response"]["headers"] = {k: v for k, v in it["response"]["headers"].items()
                                     if k.lower() not in ("content-encoding", "content-length")}
    target.write_text(yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    return target


@pytest.mark.skipif(not AIOBINANCE.exists(), reason="shared aiobinance cassettes not present")
async def test_recorded_real_order_and_1m_klines_and_maker_trades(tmp_path: Path) -> None:
    """Real 2020 Binance traffic (aiobinance, GPL-3.0: read from ../shared, never copied)."""
    clock = VirtualClock(datetime(2020, 11, 21, 14, 10, tzinfo=UTC))
    v = CcxtVenue("binance", credentials=Credentials("test-api-key-2", "test-api-secret-2"),
                  clock=clock, budget=OrderBudget(), config=FAST)
    rec = recorder(tmp_path, frozenset({"newOrderRespType"}))
    trades_rec = recorder(tmp_path, frozenset({"orderId", "startTime", "endTime"}))
    try:
        name = "cassettes__test_binance__test_limitorder_to_binance.yaml"
        with rec.use_cassette(_decoded_cassette(AIOBINANCE / name, tmp_path / "order.yaml").name):
            report = await v.place_order(OrderRequest(CID, "COTI/BNB", Side.BUY, OrderType.LIMIT,
                                                      D("300"), D("0.0015")))
        assert (report.venue_order_id, report.status, report.filled_qty) == ("31085682",
                                                                             OrderStatus.OPEN, D(0))
        name = "cli__test_extras__test_hummingbot.yaml"
        with rec.use_cassette(_decoded_cassette(AIOBINANCE / name, tmp_path / "k.yaml").name,
                              allow_playback_repeats=True):
            candles = await v.candles("COTI/BNB", datetime(2020, 8, 27, 10, 33, tzinfo=UTC),
                                      datetime(2020, 8, 27, 11, 8, tzinfo=UTC))
        assert candles[0].open_time == datetime(2020, 8, 27, 10, 33, tzinfo=UTC)
        assert (candles[0].open, candles[0].volume) == (D("0.003201"), D("7529"))
        assert all(b.open_time - a.open_time == timedelta(minutes=1)
                   for a, b in zip(candles, candles[1:]))
        name = "api__test_tradesview__test_trades_from_binance.yaml"
        with trades_rec.use_cassette(_decoded_cassette(AIOBINANCE / name, tmp_path / "t.yaml").name):
            fills = await v.fetch_fills("COTI/BNB", "18443055")
        assert fills == [Fill("299229", "", D("300"), D("0.003261"), D("0.00066035"), "BNB",
                              Liquidity.MAKER, datetime(2020, 8, 27, 10, 57, 44, 478000, tzinfo=UTC))]
    finally:
        await v.close()


# ---------------------------------------------------------------------- error mapping
def test_error_mapping_table() -> None:
    never_sent = ccxt.ExchangeNotAvailable("binance POST http://x/api/v3/order")
    never_sent.__cause__ = aiohttp.ClientConnectorError(None, OSError(111, "refused"))  # type: ignore[arg-type]
    cases: list[tuple[Exception, bool, type]] = [
        (ccxt.RequestTimeout("t"), True, UnknownOutcomeError),
        (ccxt.NetworkError("n"), True, UnknownOutcomeError),
        (ccxt.ExchangeNotAvailable("503"), True, UnknownOutcomeError),
        (never_sent, True, RetryableVenueError),
        (ccxt.RequestTimeout("t"), False, RetryableVenueError),
        (ccxt.RateLimitExceeded("429"), True, RetryableVenueError),
        (ccxt.DDoSProtection("418"), True, RetryableVenueError),
        (ccxt.InvalidNonce("-1021"), True, RetryableVenueError),
        (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), True,
         DuplicateOrderError),
        (ccxt.InvalidOrder('{"code":-1013,"msg":"Filter failure: LOT_SIZE"}'), True,
         PermanentVenueError),
        (ccxt.InsufficientFunds("x"), True, PermanentVenueError),
        (ccxt.BadSymbol("x"), False, PermanentVenueError),
        (ccxt.AuthenticationError("x"), True, PermanentVenueError),
        (ccxt.PermissionDenied("x"), True, PermanentVenueError),
        (ccxt.ExchangeError("unclassified"), True, UnknownOutcomeError),
        (ccxt.ExchangeError("unclassified"), False, PermanentVenueError),
    ]
    got = [type(map_ccxt_error(e, changes_state=s)) for e, s, _ in cases]
    assert got == [expected for _, _, expected in cases]


def test_retry_after_from_header_body_or_default() -> None:
    assert retry_after_seconds(ccxt.DDoSProtection("429"), {"Retry-After": "3"}) == 3.0
    banned = ccxt.DDoSProtection("binance 418 I'm a teapot IP banned until 1700000030000.")
    assert retry_after_seconds(banned, {}, now_ms=1700000000000) == 30.0
    assert retry_after_seconds(ccxt.DDoSProtection("binance 418 teapot"), None) == 60.0
    assert retry_after_seconds(ccxt.DDoSProtection("binance 429 Too Many"), None) == 1.0


def test_decimal_conversion_and_url_override() -> None:
    assert dec(0.1) == D("0.1") and dec(1e-05) == D("0.00001") and dec("241") == D("241")
    ex = ccxt.binance(FAST)
    override_urls(ex, "http://127.0.0.1:8765/")
    assert ex.urls["api"]["private"] == "http://127.0.0.1:8765/api/v3"
    assert ex.urls["api"]["sapi"] == "http://127.0.0.1:8765/sapi/v1"
    assert ex.urls["api"]["fapiPublic"].startswith("https://fapi.binance.com")
    asyncio.run(ex.close())
    fast = build_exchange("binance", None, None, time_scale=50.0)  # a paper exchange at 50x
    assert (fast.rateLimit, fast.tokenBucket["refillRate"]) == (1.0, 1.0)  # 50 ms / 50
    assert fast.enableRateLimit
    fast.timeout_on_exit = 0
    asyncio.run(fast.close())


# ---------------------------------------------------------------------- order budget
async def test_order_budget_is_shared_per_account_and_clock() -> None:
    clock = VirtualClock(datetime(2026, 1, 5, 12, 0, 3, tzinfo=timezone.utc))
    assert shared_budget("binance", "k1") is shared_budget("binance", "k1")
    assert shared_budget("binance", "k1") is shared_budget("binance", "k1", WallClock())  # one wall clock
    assert shared_budget("binance", "k1") is not shared_budget("binance", "k2")
    assert shared_budget("binance", "k1", clock) is shared_budget("binance", "k1", clock)
    assert shared_budget("binance", "k1", clock).clock is clock
    assert shared_budget("binance", "k1", clock) is not shared_budget("binance", "k1")
    assert "k1" not in account_key("binance", "k1")


# ---------------------------------------------------------------------- credentials
def test_credentials_from_environment_per_exchange_first() -> None:
    env = {"GENESIS_API_KEY": "generic-key", "GENESIS_API_SECRET": "generic-secret",
           "GENESIS_BINANCE_API_KEY": "bn-key", "GENESIS_BINANCE_API_SECRET": "bn-secret"}
    creds = load_credentials("binance", env)
    assert creds is not None and (creds.api_key, creds.secret) == ("bn-key", "bn-secret")
    creds = load_credentials("kraken", env)
    assert creds is not None and creds.api_key == "generic-key"
    assert "generic-secret" not in repr(creds)
    assert load_credentials("binance", {}) is None
    with pytest.raises(CredentialsError, match="GENESIS_API_SECRET is not set"):
        load_credentials("binance", {"GENESIS_API_KEY": "k"})


def test_credentials_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text(json.dumps({"binance": {"apiKey": "file-key", "secret": "file-secret"}}))
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError) as info:
        load_credentials("binance", {"GENESIS_CREDENTIALS_FILE": str(path)})
    assert str(path) in str(info.value) and f"chmod 600 {path}" in str(info.value)
    os.chmod(path, 0o600)
    creds = load_credentials("binance", {"GENESIS_CREDENTIALS_FILE": str(path)})
    assert creds is not None and (creds.api_key, creds.secret) == ("file-key", "file-secret")
    with pytest.raises(CredentialsError, match="no apiKey and secret for 'okx'"):
        load_credentials("okx", {}, path)


def test_redact_secrets_processor_masks_values_and_secret_keys() -> None:
    register_secret("sup3r-s3cret-value")
    out = io.StringIO()
    previous = structlog.get_config()
    structlog.configure(processors=[redact_secrets, structlog.processors.JSONRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(out),
                        cache_logger_on_first_use=False)
    try:
        structlog.get_logger().warning(
            "venue_error", error="auth failed for sup3r-s3cret-value",
            url="http://x/api/v3/order?symbol=BTCUSDT&signature=abcdef0123",
            apiKey="AKIA-visible?", config={"secret": "nested", "timeout": 10},
            headers=[{"X-MBX-APIKEY": "k"}])
    finally:
        structlog.configure(**previous)
    event = json.loads(out.getvalue())
    assert "sup3r-s3cret-value" not in out.getvalue() and "abcdef0123" not in out.getvalue()
    assert event["error"] == f"auth failed for {REDACTED}"
    assert event["url"].endswith(f"signature={REDACTED}")
    assert event["apiKey"] == REDACTED and event["config"] == {"secret": REDACTED, "timeout": 10}
    assert event["headers"] == [{"X-MBX-APIKEY": REDACTED}]
