"""What the CLI reads from a person: numbers in plain ASCII digits only, long inputs cut short
in error messages, no option that would be silently ignored, no slice plan denser than the
maker timeout."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from genesis.cli import main
from genesis.config import RuntimeConfig, parse_config
from genesis.requests import RequestError, parse_decimal, validate_submit
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.migrated import migrated_sqlite

ORDER = ["--symbol", "BTC/USDT", "--side", "buy", "--qty", "1", "--duration", "15m"]
pytestmark = pytest.mark.usefixtures("restore_logging")  # backtest configures logging
CANDLES = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"
HUGE = "9" * 100_000


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return migrated_sqlite(tmp_path / "genesis.db")


def genesis(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def submit(db: Path, *changes: str) -> Result:
    """``submit`` with ORDER, options in ``changes`` replacing ORDER's (or added)."""
    opts = dict(zip(ORDER[::2], ORDER[1::2]))
    opts.update(zip(changes[::2], changes[1::2]))
    return genesis("submit", "--db", str(db), *[x for kv in opts.items() for x in kv])


def stored(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT payload FROM commands").fetchall()
    finally:
        conn.close()


NOT_PLAIN = [("--qty", "1_0"), ("--qty", "1_000"), ("--qty", "\u0661\u0662"), ("--qty", "1e1"), ("--qty", ".5"),
             ("--limit-price", "100_000"), ("--limit-price", "\u0661\u0660\u0660"),
             ("--duration", "1_5m"), ("--duration", "\u0661\u0665m"),
             ("--slices", "1_0"), ("--slices", "\u0661\u0660")]


@pytest.mark.parametrize("option,value", NOT_PLAIN, ids=[f"{o}={v!r}" for o, v in NOT_PLAIN])
def test_numbers_other_than_plain_ascii_decimals_are_refused_naming_the_option(db, option, value):
    result = submit(db, option, value)
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output
    assert stored(db) == []


def test_plain_numbers_are_stored_as_typed(db):
    result = submit(db, "--qty", "10", "--limit-price", "65000.5", "--slices", "10")
    assert result.exit_code == 0, result.output
    assert '"qty": "10"' in stored(db)[0][0] and '"limit_price": "65000.5"' in stored(db)[0][0]


@pytest.mark.parametrize("args,option", [
    (["run", "--speed", "1_0"], "--speed"),
    (["watch", "--once", "--recent", "1_0"], "--recent"),
    (["backtest", "--candles", str(CANDLES), "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1",
      "--algo", "twap", "--start", "2025-06-10T00:00:00Z", "--duration", "1h", "--history-days", "2_0"],
     "--history-days"),
    (["backtest", "--candles", str(CANDLES), "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1_0",
      "--algo", "twap", "--start", "2025-06-10T00:00:00Z", "--duration", "1h"], "--qty"),
])
def test_other_commands_refuse_numbers_that_are_not_plain(tmp_path, args, option):
    result = genesis(*args, "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["submit", *ORDER[:4], "--qty", HUGE, "--duration", "15m"],
    ["submit", "--symbol", HUGE, *ORDER[2:]],
    ["submit", *ORDER[:6], "--duration", HUGE],
    ["submit", *ORDER, "--limit-price", HUGE],
    ["status", HUGE],
    ["pause", HUGE],
    ["urgency", "abc", HUGE],
    ["backtest", "--candles", str(CANDLES), "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1",
     "--algo", HUGE, "--start", "2025-06-10T00:00:00Z", "--duration", "1h"],
    ["backtest", "--candles", str(CANDLES), "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1",
     "--algo", "twap", "--start", HUGE, "--duration", "1h"],
])
def test_a_huge_input_is_cut_short_in_the_error(db, args):
    result = CliRunner().invoke(main, [*args, "--db", str(db)])
    assert result.exit_code != 0
    assert "(100000 chars)" in result.output and len(result.output) < 1000, result.output[:2000]


@pytest.mark.parametrize("args", [
    ["status", "--db", HUGE],
    ["submit", *ORDER, "--db", HUGE],
    ["backtest", "--candles", HUGE, "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1", "--algo", "twap",
     "--start", "2025-06-10T00:00:00Z", "--duration", "1h"],
])
def test_a_huge_file_name_is_cut_short_in_the_error(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output[:500]
    assert "(100000 chars)" in result.output and len(result.output) < 1000, result.output[:2000]


@pytest.mark.parametrize("algo", ["single", "auto"])
@pytest.mark.parametrize("option,value", [("--duration", "4h"), ("--slices", "10")])
def test_router_timed_algos_refuse_a_duration_or_slice_count(db, algo, option, value):
    args = ["--symbol", "BTC/USDT", "--side", "buy", "--qty", "1", "--algo", algo, option, value]
    result = genesis("submit", "--db", str(db), *args)
    assert result.exit_code == 2, result.output
    assert f"{option}: --algo {algo} takes no" in result.output
    assert stored(db) == []


@pytest.mark.parametrize("algo, own", [("vwap", ()), ("pov", ("--participation", "0.05")), ("is", ())])
def test_algos_that_slice_by_their_own_interval_refuse_a_slice_count(db, algo, own):
    result = submit(db, "--algo", algo, *own, "--slices", "10")
    assert result.exit_code == 2, result.output
    assert f"--slices: --algo {algo} takes no slice count" in result.output
    assert "use --algo twap" in result.output
    assert stored(db) == []
    assert submit(db, "--algo", algo, *own).exit_code == 0  # without --slices it is taken


def test_router_timed_algos_are_accepted_without_timing(db):
    result = genesis("submit", "--db", str(db), "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1", "--algo", "single")
    assert result.exit_code == 0, result.output
    assert '"duration_seconds": 0' in stored(db)[0][0]


def test_slices_closer_than_the_maker_timeout_are_refused_with_the_largest_count(db):
    result = submit(db, "--duration", "15m", "--slices", "900")  # 1 s apart; maker timeout 5 s
    assert result.exit_code == 2
    assert "--slices:" in result.output and "at most --slices 180" in result.output
    assert stored(db) == []
    assert submit(db, "--duration", "15m", "--slices", "180").exit_code == 0


def config(maker_first: bool, maker_timeout_seconds: float) -> RuntimeConfig:
    return parse_config({"router": {"maker_first": maker_first, "maker_timeout_seconds": maker_timeout_seconds}},
                        "test config")


def check(cfg: RuntimeConfig, duration: int, slices: int | None, algo: str = "twap") -> None:
    validate_submit(symbol="BTC/USDT", side="buy", qty="1", algo=algo, duration=duration, slices=slices,
                    limit_price=None, request_id=None, instruments=SIM_INSTRUMENTS, config=cfg)


def test_the_slice_interval_check_follows_the_router_config():
    check(config(True, 5), 900, 180)
    with pytest.raises(RequestError, match="at most --slices 90 ") as exc:
        check(config(True, 10), 900, 91)
    assert exc.value.field == "slices"
    with pytest.raises(RequestError, match="shorter than one maker timeout") as exc:
        check(config(True, 600), 300, 1)
    assert exc.value.field == "duration"
    check(config(False, 30), 900, 900)  # no maker phase: nothing to wait for
    check(config(True, 0), 900, 900)
    check(config(True, 90), 900, None)  # no --slices: the engine's own plan
    with pytest.raises(RequestError, match="--algo vwap takes no slice count") as exc:
        check(config(True, 90), 900, 900, algo="vwap")  # VWAP spaces its slices itself
    assert exc.value.field == "slices"


def test_decimal_spellings_stored_in_the_inbox_still_parse():
    for amount in (Decimal("0.00000001"), Decimal("12.5"), Decimal("1E+3")):
        assert parse_decimal("qty", str(amount)) == amount  # str(Decimal) is what a payload holds


@pytest.mark.parametrize("args,option", [
    (["--port", "8_765"], "--port"), (["--port", "70000"], "--port"),
    (["--speed", "1_0"], "--speed"), (["--speed", "0"], "--speed"),
])
def test_the_paper_exchange_refuses_numbers_that_are_not_plain(tmp_path, args, option):
    result = CliRunner().invoke(main, ["paper-exchange", "--state", str(tmp_path / "p.db"), *args])
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.db").exists()
