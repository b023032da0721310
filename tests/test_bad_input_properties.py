"""Bad input, property-based: ``genesis submit`` arguments, the runtime config and rows in the
command table. Random and adversarial values (NaN, infinities, negative, huge, wrong types,
unknown symbols, unicode, SQL-looking strings) give a clear error naming the field, or a valid
request; never a traceback, never a half-stored request, never a dead daemon."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from genesis.cli import main as cli
from genesis.config import ConfigError, RuntimeConfig, parse_config
from genesis.domain.ids import is_execution_id
from genesis.engine.command_poller import CommandPoller
from genesis.requests import validate_submit
from genesis.store import tables as t
from genesis.store.db import sync_engine
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.harness import harness
from tests.migrated import migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "config" / "runtime.yaml"
NASTY = ["", " ", "NaN", "nan", "-NaN", "sNaN", "inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e400",
         "1e-400", "0", "-0", "-1", "0.0", "9" * 40, "1e15", "0x10", "1_000", "1,5", "１.５", "١٢", "²",
         "'; DROP TABLE commands; --", "\" OR 1=1 --", "Robert'); DELETE FROM events;--", "\x00", "\n",
         "💥", "Ωmega", "BTC/USDT\x00", "None", "null", "true", "[]", "{}", "-", "--qty"]
OPTIONS = ("--symbol", "--side", "--qty", "--algo", "--duration", "--slices", "--limit-price", "--id", "--urgency")


def values(*good: str) -> st.SearchStrategy[str]:
    """Valid values, the adversarial list, and arbitrary text."""
    return st.one_of(st.sampled_from(good), st.sampled_from(NASTY),
                     st.text(max_size=30).filter(lambda s: not s.startswith("-")))


SUBMIT_ARGS = st.fixed_dictionaries({
    "--symbol": values("BTC/USDT", "ETH/USDT", "DOGE/USDT", "btc/usdt", "BTCUSDT"),
    "--side": values("buy", "sell", "BUY", "Sell"),
    "--qty": values("0.5", "1", "2.5", "0.00001", "0.000001", "100000", "1e-5"),
}, optional={
    "--algo": values("twap", "vwap", "auto", "single", "TWAP"),
    "--duration": values("15m", "900", "900s", "1h", "5m", "30m", "4h", "1d", "0", "-5m", "1.5m", "1e3"),
    "--slices": values("1", "10", "0", "-3", "10001", "1.5", "9" * 30),
    "--limit-price": values("100000", "0.01", "110000.12", "110000.123", "-5", "0"),
    "--id": values("order-1", "a" * 128, "a" * 129, "with space", "ok.id:1"),
    "--urgency": values("low", "medium", "high", "critical", "emergency", "panic"),
})


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("bad-input") / "genesis.db")


def command_rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT command_id, kind, execution_id, payload FROM commands ORDER BY command_id").fetchall()
    finally:
        conn.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=SUBMIT_ARGS)
def test_submit_gives_a_usage_error_naming_the_field_or_stores_one_valid_request(cli_db: Path,
                                                                                 args: dict[str, str]) -> None:
    before = command_rows(cli_db)
    argv = ["submit", "--db", str(cli_db), "--config", str(CONFIG_FILE)]
    for option, value in args.items():
        argv += [option, value]
    result = CliRunner().invoke(cli, argv)
    after = command_rows(cli_db)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        execution_id = result.output.strip()
        assert is_execution_id(execution_id)
        new = after[len(before):]
        assert after[:len(before)] == before and len(new) <= 1  # 0: the same --id resubmitted
        (row,) = [r for r in after if r[2] == execution_id]
        payload = json.loads(row[3])
        # what was stored is itself a valid request, with the same meaning
        stored = validate_submit(symbol=payload["symbol"], side=payload["side"], qty=payload["qty"],
                                 algo=payload["algo"], duration=payload["duration_seconds"],
                                 slices=payload["slice_count"], limit_price=payload["limit_price"],
                                 request_id=payload["request_id"], instruments=SIM_INSTRUMENTS,
                                 config=RuntimeConfig(), urgency=payload.get("urgency"))
        assert stored.qty > 0 and stored.qty.is_finite() and stored.symbol in SIM_INSTRUMENTS
    else:
        assert result.exit_code == 2, (argv, result.exit_code, result.output)
        assert after == before  # nothing half-stored
        message = result.output.strip().splitlines()[-1]
        assert any(option in message or option.lstrip("-") in message for option in OPTIONS), (argv, message)


def test_submit_duration_with_thousands_of_digits_is_a_usage_error(cli_db: Path) -> None:
    result = CliRunner().invoke(cli, ["submit", "--db", str(cli_db), "--config", str(CONFIG_FILE), "--symbol",
                                      "BTC/USDT", "--side", "buy", "--qty", "1", "--duration", "9" * 5000])
    assert result.exit_code == 2 and "--duration" in result.output, result.output


# ---------------------------------------------------------------------- the runtime config
SECTIONS = {name: list(field.annotation.model_fields) for name, field in RuntimeConfig.model_fields.items()}
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20, max_value=10**40),
                   st.floats(), st.text(max_size=12), st.sampled_from(NASTY),
                   st.decimals(allow_nan=True, allow_infinity=True), st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000))
KEYS = st.one_of(st.sampled_from([k for fields in SECTIONS.values() for k in fields] + list(SECTIONS)),
                 st.text(max_size=10), st.integers())
TREES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


@st.composite
def configs(draw: st.DrawFn) -> Any:
    """Mostly the real shape (known sections and keys) with random values; sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(TREES)
    out: dict[Any, Any] = {}
    for section in draw(st.lists(st.sampled_from(list(SECTIONS)), max_size=4, unique=True)):
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=4, unique=True))
        out[section] = {k: draw(TREES) for k in keys} if draw(st.booleans()) else draw(TREES)
    if draw(st.booleans()):
        out[draw(KEYS)] = draw(TREES)
    return out


@settings(max_examples=400, deadline=None)
@given(data=configs())
def test_config_is_valid_or_a_config_error_naming_the_key(data: Any) -> None:
    try:
        config = parse_config(data, "runtime.yaml")
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith("runtime.yaml: ")
        named = text.removeprefix("runtime.yaml: ")
        assert named.startswith("the top level must be a mapping") or ": " in named, text
        first_key = named.split(": ", 1)[0]
        # keys may themselves contain dots ("." is a valid YAML key): match on the prefix
        assert named.startswith("the top level") or any(named.startswith(f"{k}") for k in map(str, data)) \
            or first_key == "(top level)", text
        return
    assert isinstance(config, RuntimeConfig)
    assert config.risk.max_parent_notional_usdt.is_finite() and config.risk.max_parent_notional_usdt > 0
    for limit in config.risk.max_position_base.values():
        assert limit.is_finite() and limit > 0


YAML_TREES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=200), st.builds(yaml.safe_dump, YAML_TREES)))
def test_config_file_of_random_text_is_valid_or_a_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                               text: str) -> None:
    from genesis.config import load_config

    path = tmp_path_factory.mktemp("cfg") / "runtime.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))


# ---------------------------------------------------------------------- the command table
SUBMIT_KEYS = ("symbol", "side", "qty", "algo", "duration_seconds", "slice_count", "limit_price", "request_id",
               "urgency")
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20, max_value=10**60),
              st.floats(), st.sampled_from(NASTY), st.text(max_size=12),
              st.sampled_from(["BTC/USDT", "buy", "twap", "vwap", "0.5", "900", 900, "high"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
KINDS = st.one_of(st.sampled_from(["submit", "pause", "resume", "cancel", "urgency", "", "SUBMIT", "boom",
                                   "'; DROP TABLE commands; --"]), st.text(max_size=16))
HEX_IDS = st.text(alphabet="0123456789abcdef", min_size=12, max_size=12)


@st.composite
def garbage_rows(draw: st.DrawFn) -> tuple[str, str, str]:
    """(kind, execution id, payload): mostly a JSON object whose values are anything (NaN and
    infinities included), often under the keys a submission uses; sometimes any JSON value or
    text that is not JSON at all, or an execution id that is not one."""
    keys = draw(st.lists(st.one_of(st.sampled_from(SUBMIT_KEYS), st.text(max_size=8)), max_size=9, unique=True))
    payload = st.one_of(st.just(json.dumps({k: draw(JSON_VALUES) for k in keys})),
                        JSON_VALUES.map(json.dumps), st.text(max_size=20), st.sampled_from(NASTY))
    execution_id = st.one_of(HEX_IDS, st.sampled_from(["", "zz", "0123456789AB", "'; DROP TABLE events; --"]),
                             st.text(max_size=20))
    return draw(KINDS), draw(st.one_of(HEX_IDS, execution_id)), draw(payload)


async def run_poller(db_path: Path, rows: list[tuple[str, str, str]], timeout_seconds: float = 20.0
                     ) -> tuple[list[tuple[Any, ...]], bool]:
    """The daemon's real command poller (``CommandPoller``) over ``rows`` inserted into
    the command table, then one valid pause command. Returns every command's (kind, outcome,
    detail) and whether the poller was still running at the end."""
    config = parse_config({"engine": {"command_poll_seconds": 0.01}})
    async with harness(db_path, config) as h:
        poller_of = CommandPoller(h.engine, h.store, h.supervisor, lambda: config)
        stop = asyncio.Event()
        engine = sync_engine(db_path)
        try:
            now = datetime.now(timezone.utc)
            with engine.begin() as conn:
                for kind, execution_id, payload in rows + [("pause", "feedfeedfeed", "{}")]:
                    conn.execute(insert(t.commands), {"kind": kind, "execution_id": execution_id,
                                                      "payload": payload, "created_at": now})
            poller = asyncio.create_task(poller_of.run(stop))
            deadline = asyncio.get_running_loop().time() + timeout_seconds
            while not poller.done() and asyncio.get_running_loop().time() < deadline:
                with engine.connect() as conn:
                    pending = conn.execute(select(t.commands.c.command_id)
                                           .where(t.commands.c.processed_at.is_(None))).first()
                if pending is None:
                    break
                await asyncio.sleep(0.01)
            alive = not poller.done()
            stop.set()
            await asyncio.gather(poller, return_exceptions=True)
            with engine.connect() as conn:
                outcomes = [tuple(r) for r in conn.execute(
                    select(t.commands.c.kind, t.commands.c.outcome, t.commands.c.detail)
                    .order_by(t.commands.c.command_id))]
        finally:
            engine.dispose()
    return outcomes, alive


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("commands") / "template.db")


def fresh_db(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("commands") / "genesis.db"
    shutil.copyfile(template, path)
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(garbage_rows(), min_size=1, max_size=6))
def test_garbage_commands_are_settled_with_a_reason_and_the_poller_keeps_running(
        template_db: Path, tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str]]) -> None:
    outcomes, alive = asyncio.run(run_poller(fresh_db(template_db, tmp_path_factory), rows))
    assert alive, outcomes
    assert len(outcomes) == len(rows) + 1
    for kind, outcome, detail in outcomes:
        assert outcome is not None, outcomes  # every command settled
        if outcome in ("rejected", "ignored"):
            assert detail, outcomes  # with the reason
        else:
            assert outcome in ("accepted", "duplicate") and kind in ("submit", "pause", "resume", "cancel",
                                                                       "urgency"), outcomes
    assert outcomes[-1] == ("pause", "ignored", "execution is not live")  # the poller still serves


POISON = [
    pytest.param(("submit", "0123456789ab", "not json at all"), id="payload-not-json"),
    pytest.param(("urgency", "0123456789ab", "[1, 2]"), id="urgency-payload-not-an-object"),
    pytest.param(("submit", "0123456789ab", json.dumps({"symbol": "BTC/USDT", "side": "buy", "qty": "1",
                                                        "algo": "twap", "duration_seconds": float("inf")})),
                 id="duration-infinity"),
    pytest.param(("submit", "not-an-id", json.dumps({"symbol": "BTC/USDT", "side": "buy", "qty": "1",
                                                     "algo": "twap", "duration_seconds": 900})),
                 id="malformed-execution-id"),
]


@pytest.mark.parametrize("row", POISON)
def test_poison_commands_are_rejected_and_the_poller_keeps_running(template_db: Path,
                                                                   tmp_path_factory: pytest.TempPathFactory,
                                                                   row: tuple[str, str, str]) -> None:
    outcomes, alive = asyncio.run(run_poller(fresh_db(template_db, tmp_path_factory), [row], timeout_seconds=5))
    assert alive
    assert outcomes[0][1] == "rejected" and outcomes[0][2]
    assert outcomes[-1] == ("pause", "ignored", "execution is not live")
