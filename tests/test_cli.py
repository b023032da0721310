"""``genesis`` CLI: bad input is refused with a message naming the field and stores nothing;
resubmission is idempotent; status/db commands work on a fresh database.

Commands that do not start the daemon run in-process (click's CliRunner); ``genesis run``
runs as a subprocess because it configures process-wide logging and signal handlers.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from genesis.cli import main
from genesis.config import RuntimeConfig
from genesis.algorithms.registry import submit_options
from genesis.requests import ALGOS, MAX_SLICES, URGENCIES, WINDOWED_ALGOS, RequestError, SubmitRequest, validate_submit
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.migrated import migrated_sqlite

ROOT = Path(__file__).resolve().parents[1]
ORDER = {"--symbol": "BTC/USDT", "--side": "buy", "--qty": "2.5", "--algo": "twap", "--duration": "15m"}


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "genesis.db")


@pytest.fixture
def db_path(migrated_template: Path, tmp_path: Path) -> Path:
    """A fresh migrated database (a copy of one migrated once: Alembic is the slow part)."""
    path = tmp_path / "genesis.db"
    shutil.copyfile(migrated_template, path)
    return path


def genesis(db: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--db", str(db)], env=env, catch_exceptions=False)


def submit_args(**changes: str | None) -> list[str]:
    """``submit`` with ORDER's options, some replaced (``--limit-price`` as ``limit_price``)."""
    opts: dict[str, str | None] = dict(ORDER)
    opts.update({"--" + k.replace("_", "-"): v for k, v in changes.items()})
    args = ["submit"]
    for k, v in opts.items():
        if v is not None:
            args += [k, v]
    return args


def commands(db: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT command_id, request_id, kind, execution_id, payload FROM commands").fetchall()
    finally:
        conn.close()


BAD_SUBMISSIONS = [
    ({"symbol": "DOGE/USDT"}, "--symbol"),
    ({"symbol": ""}, "--symbol"),
    ({"qty": "0"}, "--qty"),
    ({"qty": "-1"}, "--qty"),
    ({"qty": "nan"}, "--qty"),
    ({"qty": "sNaN"}, "--qty"),
    ({"qty": "inf"}, "--qty"),
    ({"qty": "-Infinity"}, "--qty"),
    ({"qty": "1e400"}, "--qty"),
    ({"qty": "two"}, "--qty"),
    ({"qty": ""}, "--qty"),
    ({"qty": "0.000001"}, "--qty"),  # below the BTC/USDT minimum 0.00001
    ({"qty": "1.000001"}, "--qty"),  # not a multiple of the step 0.00001
    ({"qty": "9001"}, "--qty"),  # above the instrument maximum
    ({"duration": "2m"}, "--duration"),
    ({"duration": "31m"}, "--duration"),
    ({"duration": "abc"}, "--duration"),
    ({"duration": "0"}, "--duration"),
    ({"duration": "-10m"}, "--duration"),
    ({"duration": "1.5s"}, "--duration"),
    ({"duration": "5.0000000000000000000000000000001m"}, "--duration"),
    ({"slices": "0"}, "--slices"),
    ({"slices": "-3"}, "--slices"),
    ({"slices": str(MAX_SLICES + 1)}, "--slices"),
    ({"slices": "x"}, "--slices"),
    ({"side": "hold"}, "--side"),
    ({"side": ""}, "--side"),
    ({"algo": "iceberg"}, "--algo"),
    ({"limit_price": "-5"}, "--limit-price"),
    ({"limit_price": "0"}, "--limit-price"),
    ({"limit_price": "cheap"}, "--limit-price"),
    ({"limit_price": "nan"}, "--limit-price"),
    ({"limit_price": "100.001"}, "--limit-price"),  # off the 0.01 tick
    ({"limit_price": "1e30"}, "--limit-price"),
    ({"id": "has space"}, "--id"),
    ({"id": "trailing-newline\n"}, "--id"),
    ({"id": "x" * 129}, "--id"),
    ({"id": ""}, "--id"),
    ({"id": "naïve"}, "--id"),
    ({"urgency": "high"}, "--urgency"),  # only for --algo vwap
]


@pytest.mark.parametrize("changes,field", BAD_SUBMISSIONS, ids=[f"{f}={v!r}"[:40] for c, f in BAD_SUBMISSIONS
                                                                  for v in c.values()])
def test_bad_submission_exits_nonzero_naming_the_field_and_stores_nothing(db_path, changes, field):
    result = genesis(db_path, *submit_args(**changes))
    assert result.exit_code != 0
    assert field in result.output, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""  # no execution id printed
    assert commands(db_path) == []


def test_submit_prints_an_execution_id_and_records_one_command(db_path):
    result = genesis(db_path, *submit_args())
    assert result.exit_code == 0, result.output
    execution_id = result.stdout.strip()
    rows = commands(db_path)
    assert len(rows) == 1 and rows[0][2] == "submit" and rows[0][3] == execution_id
    payload = json.loads(rows[0][4])
    assert payload["qty"] == "2.5" and payload["duration_seconds"] == 900 and payload["side"] == "buy"


def test_resubmitting_the_same_id_returns_the_same_execution(db_path):
    first = genesis(db_path, *submit_args(id="client-42"))
    assert first.exit_code == 0, first.output
    # the same order spelled differently is still the same order
    again = genesis(db_path, *submit_args(id="client-42", qty="2.50", duration="900s", side="BUY"))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == first.stdout.strip()
    assert len(commands(db_path)) == 1


def test_reusing_an_id_for_a_different_order_is_refused(db_path):
    first = genesis(db_path, *submit_args(id="client-43"))
    assert first.exit_code == 0, first.output
    before = commands(db_path)
    for changes in ({"qty": "3"}, {"side": "sell"}, {"duration": "20m"}, {"limit_price": "100000.00"}):
        result = genesis(db_path, *submit_args(id="client-43", **changes))
        assert result.exit_code != 0
        assert "--id" in result.output and first.stdout.strip() in result.output, result.output
    assert commands(db_path) == before


@pytest.mark.parametrize("command", ["pause", "resume", "cancel"])
def test_control_of_an_unknown_execution_fails_clearly(db_path, command):
    result = genesis(db_path, command, "0123456789ab")
    assert result.exit_code != 0
    assert "no execution '0123456789ab'" in result.output
    assert commands(db_path) == []


def test_control_of_a_queued_execution_is_recorded(db_path):
    execution_id = genesis(db_path, *submit_args()).stdout.strip()
    result = genesis(db_path, "pause", execution_id)
    assert result.exit_code == 0, result.output
    assert [(r[2], r[3]) for r in commands(db_path)] == [("submit", execution_id), ("pause", execution_id)]


def test_status_json_has_the_documented_fields(db_path):
    execution_id = genesis(db_path, *submit_args(qty="1.25")).stdout.strip()
    listing = genesis(db_path, "status", "--json")
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.stdout)
    assert isinstance(rows, list) and len(rows) == 1
    one = json.loads(genesis(db_path, "status", execution_id, "--json").stdout)
    assert one == rows[0]
    for field in ("execution_id", "state", "algo", "symbol", "side", "target_qty", "filled_qty", "progress_pct"):
        assert field in one, field
    assert one["execution_id"] == execution_id and one["state"] == "queued"
    assert Decimal(one["target_qty"]) == Decimal("1.25") and Decimal(one["filled_qty"]) == 0
    assert one["progress_pct"] == 0

    missing = genesis(db_path, "status", "0123456789ab", "--json")
    assert missing.exit_code != 0 and "no execution" in missing.output
    plain = genesis(db_path, "status")
    assert plain.exit_code == 0 and execution_id in plain.stdout


@pytest.mark.parametrize("args", [("status",), ("metrics",), ("pause", "0123456789ab"),
                                  ("urgency", "0123456789ab", "high"), ("db", "rebuild-projections")])
def test_a_mistyped_db_is_an_error_and_creates_nothing(short_tmp_path, args):
    typo = short_tmp_path / "genesys.db"
    result = genesis(typo, *args)
    assert result.exit_code == 1
    assert f"{typo}: no such database" in result.output and "--db" in result.output
    assert list(short_tmp_path.iterdir()) == []


def test_db_upgrade_then_rebuild_projections_on_a_fresh_database(tmp_path):
    db = tmp_path / "fresh" / "genesis.db"
    up = genesis(db, "db", "upgrade")
    assert up.exit_code == 0, up.output
    assert "at revision" in up.stdout and db.exists()
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert {"events", "commands", "executions", "execution_slices", "child_orders", "fills"} <= tables
    assert genesis(db, "db", "upgrade").exit_code == 0  # idempotent
    rebuilt = genesis(db, "db", "rebuild-projections")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "replayed 0 events" in rebuilt.stdout


def test_db_defaults_from_GENESIS_DB(tmp_path, monkeypatch):
    db = tmp_path / "from-env.db"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, submit_args(), env={"GENESIS_DB": str(db)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(commands(db)) == 1
    assert not (tmp_path / "genesis.db").exists()
    listing = CliRunner().invoke(main, ["status", "--json"], env={"GENESIS_DB": str(db)})
    assert json.loads(listing.stdout)[0]["execution_id"] == result.stdout.strip()


def test_a_file_that_is_not_a_database_is_a_clear_error(short_tmp_path):
    bogus = short_tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 50)
    for args in (["status"], submit_args(), ["db", "upgrade"]):
        result = genesis(bogus, *args)
        assert result.exit_code != 0
        assert "cannot open or migrate the database" in result.output and str(bogus) in result.output
    assert bogus.read_text().startswith("these are my notes")


def test_run_refuses_bad_options_before_touching_the_database(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("NOTIFY_SOCKET", None)
    cases = {
        "--speed": ["--speed", "0"],
        "--speed ": ["--speed", "nan"],
        "--sim-start": ["--sim-start", "yesterday"],
        "--sim-start ": ["--sim-start", "1990-01-01T00:00:00Z"],  # before the shipped candles
        "--venue": ["--venue", "nyse"],
    }
    procs = {}
    for name, args in cases.items():  # concurrently: each is a Python start-up
        db = tmp_path / f"run{len(procs)}.db"
        procs[name] = (db, subprocess.Popen([sys.executable, "-m", "genesis", "run", "--db", str(db), *args],
                                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True))
    for name, (db, proc) in procs.items():
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode not in (0, None), (name, err)
        assert name.strip() in err and "Traceback" not in err, err
        assert not db.exists(), f"{name}: the database was created"
        assert not db.with_suffix(".pid").exists()


# -- property: validation never fails with anything but a RequestError naming a field ----------

FIELDS = {"symbol", "side", "algo", "qty", "duration", "slices", "limit_price", "id", "urgency",
          *(o.name for o in submit_options())}  # and each algorithm's own options (POV's --participation)
numbers = st.one_of(st.decimals(allow_nan=True, allow_infinity=True).map(str), st.floats().map(repr),
                    st.integers(min_value=-10**30, max_value=10**30).map(str))
VALID = {
    "symbol": st.sampled_from(sorted(SIM_INSTRUMENTS)),
    "side": st.sampled_from(["buy", "sell", "BUY", "Sell"]),
    "qty": st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("50"), places=4).map(str),
    "algo": st.sampled_from(ALGOS),
    "duration": st.one_of(st.none(), st.integers(min_value=300, max_value=1800),
                          st.integers(min_value=5, max_value=30).map(lambda m: f"{m}m")),
    "slices": st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    "limit_price": st.one_of(st.none(), st.decimals(min_value=1, max_value=200_000, places=2).map(str)),
    "request_id": st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True)),
    "urgency": st.none(),
}
JUNK = {
    "symbol": st.text(max_size=12),
    "side": st.text(max_size=6),
    "qty": st.one_of(numbers, st.text(max_size=20)),
    "algo": st.text(max_size=8),
    "duration": st.one_of(st.integers(min_value=-10**6, max_value=10**6), st.text(max_size=12),
                          st.builds(lambda n, u: f"{n}{u}", numbers, st.sampled_from(["", "s", "m", "h", "d", "x"]))),
    "slices": st.integers(min_value=-10, max_value=2 * MAX_SLICES),
    "limit_price": st.one_of(numbers, st.text(max_size=12)),
    "request_id": st.text(max_size=200),
    "urgency": st.one_of(st.sampled_from(URGENCIES), st.text(max_size=8)),
}


@st.composite
def submissions(draw: st.DrawFn) -> dict[str, object]:
    """A valid submission with up to two fields replaced by arbitrary values."""
    args = {name: draw(strategy) for name, strategy in VALID.items()}
    for name in draw(st.lists(st.sampled_from(sorted(JUNK)), max_size=2, unique=True)):
        args[name] = draw(JUNK[name])
    return args


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=submissions())
def test_validate_submit_gives_a_valid_request_or_a_request_error(args):
    config = RuntimeConfig()
    try:
        req = validate_submit(**args, instruments=SIM_INSTRUMENTS, config=config)
    except RequestError as exc:
        assert exc.field in FIELDS and str(exc).startswith(exc.field + ": ")
        event(f"refused: {exc.field}")
        return
    event("accepted")
    assert isinstance(req, SubmitRequest)
    instrument = SIM_INSTRUMENTS[req.symbol]
    assert req.qty.is_finite() and req.qty >= instrument.min_qty and req.qty == instrument.round_qty_down(req.qty)
    if req.algo in WINDOWED_ALGOS:
        bounds = config.vwap if req.algo == "vwap" else config.twap
        assert bounds.min_duration_seconds <= req.duration_seconds <= bounds.max_duration_seconds
    assert req.slice_count is None or 1 <= req.slice_count <= MAX_SLICES
    if req.limit_price is not None:
        assert req.limit_price > 0 and req.limit_price == instrument.round_price(req.limit_price)
    # what the daemon does with the stored payload: validate again, and get the same request
    p = json.loads(json.dumps(req.payload()))
    again = validate_submit(symbol=p["symbol"], side=p["side"], qty=p["qty"], algo=p["algo"],
                            duration=int(p["duration_seconds"]), slices=p.get("slice_count"),
                            limit_price=p.get("limit_price"), request_id=p.get("request_id"),
                            urgency=p.get("urgency"), instruments=SIM_INSTRUMENTS, config=config,
                            options={o.name: p.get(o.name) for o in submit_options()})
    assert again == req
