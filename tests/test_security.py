"""Security: private database files, refusing unsafe config and credentials files, and secrets
that never reach a log line, an event, the database or an exception message."""

from __future__ import annotations

import re

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Iterator

import pytest
import structlog
from click.testing import CliRunner

from genesis.chaos.procs import child_env
from genesis.chaos.run import ChaosSpec, run_chaos
from genesis.cli import main as cli
from genesis.config import ConfigError, load_config
from genesis.domain.orders import Side
from genesis.log import configure_logging
from genesis.venue.base import PermanentVenueError
from genesis.venue.credentials import CredentialsError, load_credentials
from tests.test_fault_matrix import ccxt_venue, paper  # noqa: F401  (fixture)
from tests.test_venue_contract import KEY, order

ROOT = Path(__file__).resolve().parent.parent
API_KEY, API_SECRET = "SECRETKEY123456", "SECRETSECRET987654"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: files would be world-readable and writable unless genesis asks otherwise."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------------- private database files
def test_db_upgrade_creates_the_database_0600(tmp_path: Path, permissive_umask: None) -> None:
    db = tmp_path / "new" / "genesis.db"
    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", str(db)])
    assert result.exit_code == 0, result.output
    files = [p for p in tmp_path.joinpath("new").iterdir()]
    assert db in files and all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}


@pytest.mark.slow
def test_the_daemon_creates_its_database_and_pid_file_0600(tmp_path: Path) -> None:
    db, log = tmp_path / "daemon.db", tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "genesis", "run", "--venue", "sim", "--speed", "60",
                                 "--db", str(db), "--config", str(ROOT / "config/runtime.yaml")],
                                env=child_env(), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                preexec_fn=lambda: os.umask(0), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "daemon_ready" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("daemon.") and p != log)
        assert {p.name for p in files} >= {"daemon.db", "daemon.db-wal", "daemon.pid"}
        assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text(errors="replace")


# ---------------------------------------------------------------------- unsafe files are refused
def write(path: Path, text: str, file_mode: int) -> Path:
    path.write_text(text)
    path.chmod(file_mode)
    return path


@pytest.mark.parametrize("file_mode", [0o666, 0o646, 0o602])
def test_a_world_writable_config_is_refused(tmp_path: Path, file_mode: int) -> None:
    config = write(tmp_path / "runtime.yaml", "risk: {kill_switch: false}\n", file_mode)
    with pytest.raises(ConfigError, match="world-writable") as info:
        load_config(config)
    assert f"chmod o-w {config}" in str(info.value) and f"{file_mode:04o}" in str(info.value)
    result = CliRunner().invoke(cli, ["submit", "--db", str(tmp_path / "g.db"), "--config", str(config),
                                      "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1"])
    assert result.exit_code == 1 and "world-writable" in result.output
    assert not (tmp_path / "g.db").exists()  # refused before anything was touched


@pytest.mark.parametrize("file_mode", [0o600, 0o640, 0o644, 0o660])
def test_a_config_others_cannot_write_is_accepted(tmp_path: Path, file_mode: int) -> None:
    config = write(tmp_path / "runtime.yaml", "risk: {kill_switch: true}\n", file_mode)
    assert load_config(config).risk.kill_switch is True


def test_the_daemon_refuses_to_start_with_a_world_writable_config(tmp_path: Path) -> None:
    config = write(tmp_path / "runtime.yaml", "logging: {level: info}\n", 0o666)
    done = subprocess.run([sys.executable, "-m", "genesis", "run", "--db", str(tmp_path / "g.db"), "--config",
                           str(config)], env=child_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1 and "world-writable" in done.stderr and "chmod o-w" in done.stderr, done.stderr
    assert not (tmp_path / "g.db").exists()


CREDS = json.dumps({"apiKey": API_KEY, "secret": API_SECRET})


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o700])
def test_a_credentials_file_others_may_read_is_refused(tmp_path: Path, file_mode: int) -> None:
    creds = write(tmp_path / "creds.json", CREDS, file_mode)
    if not file_mode & 0o077:
        assert load_credentials("binance", env={"GENESIS_CREDENTIALS_FILE": str(creds)}).secret == API_SECRET
        return
    with pytest.raises(CredentialsError, match=f"has mode {file_mode:04o}") as info:
        load_credentials("binance", env={"GENESIS_CREDENTIALS_FILE": str(creds)})
    assert f"chmod 600 {creds}" in str(info.value) and API_SECRET not in str(info.value)


def test_the_daemon_refuses_a_credentials_file_others_may_read(tmp_path: Path) -> None:
    creds = write(tmp_path / "creds.json", CREDS, 0o644)
    done = subprocess.run([sys.executable, "-m", "genesis", "run", "--venue", "ccxt:binance", "--db",
                           str(tmp_path / "g.db"), "--config", str(ROOT / "config/runtime.yaml")],
                          env=child_env(GENESIS_CREDENTIALS_FILE=str(creds)), capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "has mode 0644" in done.stderr and f"chmod 600 {creds}" in done.stderr
    assert API_SECRET not in done.stderr + done.stdout and API_KEY not in done.stderr + done.stdout


def test_a_malformed_credentials_file_is_reported_without_its_content(tmp_path: Path) -> None:
    """A YAML parser's message quotes the offending line: here, the secret."""
    creds = write(tmp_path / "creds.yaml", f'apiKey: {API_KEY}\nsecret: "{API_SECRET}\n', 0o600)
    with pytest.raises(CredentialsError, match="not valid YAML or JSON at line") as info:
        load_credentials("binance", env={"GENESIS_CREDENTIALS_FILE": str(creds)})
    assert API_SECRET not in str(info.value) and API_KEY not in str(info.value)


# ---------------------------------------------------------------------- secrets stay secret
@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The daemon's logging pipeline (JSON lines, secret redaction) into a buffer."""
    previous = structlog.get_config()
    buffer = io.StringIO()
    configure_logging("info", json=True, stream=buffer)
    try:
        yield buffer
    finally:
        structlog.configure(**previous)


async def test_an_authentication_error_names_no_secret(paper, json_log: io.StringIO) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A wrong secret (bad signature, -1022) and a wrong key (-2015): permanent refusals whose
    messages, exception chains and log lines carry neither the key nor the secret."""
    server, _, clock = paper
    for key, code in ((KEY, "-1022"), (API_KEY, "-2015")):  # the exchange's key with our secret; a wrong key
        load_credentials("binance", env={"GENESIS_API_KEY": key, "GENESIS_API_SECRET": API_SECRET})  # as the daemon
        venue = ccxt_venue(server.url, clock)
        venue.ex.apiKey, venue.ex.secret = key, API_SECRET
        try:
            with pytest.raises(PermanentVenueError) as info:
                await venue.place_order(order("gfa0000000000-9-0", Side.BUY, "0.1"))
        finally:
            await venue.close()
        text = "".join(traceback.format_exception(info.value)) + repr(info.value)
        assert code in text and ("AuthenticationError" in text or "PermissionDenied" in text), text
        assert API_SECRET not in text and key not in text, text
        structlog.get_logger("test").exception("order_failed", error=info.value)
    logged = json_log.getvalue()
    assert logged.count("venue_error") == 2 and logged.count("order_failed") == 2
    assert API_SECRET not in logged and API_KEY not in logged and KEY not in logged


def test_a_secret_in_an_exception_or_its_frames_is_masked_in_the_log(json_log: io.StringIO) -> None:
    load_credentials("binance", env={"GENESIS_API_KEY": API_KEY, "GENESIS_API_SECRET": API_SECRET})

    def connect(secret: str) -> None:
        raise RuntimeError(f"handshake failed for {secret}")

    try:
        connect(API_SECRET)
    except RuntimeError:
        structlog.get_logger("test").exception("connect_failed", config={"apiKey": API_KEY})
    line = json.loads(json_log.getvalue().splitlines()[-1])
    assert "handshake failed for ***" in line["exception"] and line["config"] == {"apiKey": "***"}
    assert API_SECRET not in json_log.getvalue() and API_KEY not in json_log.getvalue()


@pytest.mark.slow
def test_secrets_never_reach_the_daemon_log_or_database(tmp_path: Path) -> None:
    """The daemon and the paper exchange as processes with a known key pair, a TWAP and a VWAP
    through 5xx, 429, dropped responses and a kill -9: neither the key nor the secret appears
    in the daemon's log, its database (events included) or its WAL."""
    spec = ChaosSpec(seed=5, random_kills=1, forced_per_point=0, concurrency=2, speed=240.0,
                     durations_seconds=(300, 301), max_uptime_seconds=1.5, early_kill_share=0.0,
                     faults="p_5xx=0.1,p_429=0.05,p_drop_response=0.05", drain_timeout_seconds=60.0,
                     api_key=API_KEY, api_secret=API_SECRET)
    result = run_chaos(tmp_path, spec, echo=lambda _line: None)
    assert result.ok, result.line() + "\n" + "\n".join(result.verdict.failures + result.problems)
    log = (tmp_path / "daemon.log").read_bytes()
    assert b"daemon_ready" in log  # it did talk to the exchange (the verdict above saw its orders)
    if b"signature=" in log:  # an injected fault logged a signed request: redacted
        assert b"signature=***" in log and not re.search(rb"signature=[0-9a-f]{16}", log)
    daemon_files = [p for p in tmp_path.iterdir() if p.name.startswith("daemon.")]
    assert any(p.name == "daemon.db" for p in daemon_files)
    for path in daemon_files:
        data = path.read_bytes()
        for secret in (API_KEY, API_SECRET):
            assert secret.encode() not in data, f"{secret} found in {path.name}"
            assert secret.encode("utf-16-le") not in data
