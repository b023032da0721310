"""``submit``, ``urgency``, ``pause``/``resume``/``cancel``: what the CLI can tell is refused
before anything is stored; ``--wait`` blocks until the daemon settled the command and says how
(exit 0 accepted, 1 rejected, 3 no verdict in time)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from genesis.cli import main
from tests.test_daemon_process import CALM, Workspace, ws  # noqa: F401  (ws: the daemon workspace fixture)

SUBMIT = ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1"]


def genesis(db: Path, *args: str, config: Path | None = None) -> Result:
    extra = ["--config", str(config)] if config else []
    return CliRunner().invoke(main, [*args, "--db", str(db), *extra], catch_exceptions=False)


def command_rows(db: Path) -> list[tuple[str, str | None]]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT kind, outcome FROM commands ORDER BY command_id").fetchall()
    finally:
        conn.close()


def test_urgency_is_refused_before_storing_unless_the_execution_is_a_vwap(tmp_path):
    db = tmp_path / "genesis.db"
    twap = genesis(db, *SUBMIT, "--algo", "twap", "--duration", "15m").stdout.strip()
    vwap = genesis(db, *SUBMIT, "--algo", "vwap", "--duration", "1h").stdout.strip()
    refused = genesis(db, "urgency", twap, "high")
    assert refused.exit_code == 2 and f"urgency: applies to vwap executions only; {twap} is twap" in refused.output
    assert genesis(db, "urgency", vwap, "high").exit_code == 0
    assert command_rows(db) == [("submit", None), ("submit", None), ("urgency", None)]


def test_control_of_a_rejected_or_ended_execution_is_refused_before_storing(tmp_path):
    import sqlite3

    db = tmp_path / "genesis.db"
    execution_id = genesis(db, *SUBMIT, "--duration", "15m").stdout.strip()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE commands SET processed_at = '2025-06-10 00:00:00', outcome = 'rejected', "
                     "detail = 'tier: ...'")
    conn.close()
    result = genesis(db, "pause", execution_id)
    assert result.exit_code == 2 and f"execution {execution_id} is rejected: there is nothing to pause" in result.output
    assert len(command_rows(db)) == 1


def test_submit_is_refused_while_the_configured_kill_switch_is_on(tmp_path):
    config = tmp_path / "runtime.yaml"
    config.write_text(yaml.safe_dump({"risk": {"kill_switch": True}}))
    db = tmp_path / "genesis.db"
    result = genesis(db, *SUBMIT, "--duration", "15m", config=config)
    assert result.exit_code == 2 and "risk: kill switch is on" in result.output
    assert not db.exists() or command_rows(db) == []


def test_wait_without_a_daemon_times_out_with_exit_status_3_and_the_command_stays_queued(tmp_path):
    db = tmp_path / "genesis.db"
    result = genesis(db, *SUBMIT, "--duration", "15m", "--wait", "--wait-timeout", "0.3")
    assert result.exit_code == 3
    assert "no verdict from the daemon within 0.3s" in result.stderr and len(result.stdout.strip()) == 12
    assert command_rows(db) == [("submit", None)]


def test_wait_reports_the_daemons_verdicts(ws: Workspace):  # noqa: F811
    settings = yaml.safe_load(ws.config.read_text())
    daemon = ws.daemon(speed=CALM)
    daemon.wait_ready()

    accepted = ws.cli(*SUBMIT, "--algo", "vwap", "--duration", "1h", "--wait", "--wait-timeout", "60")
    execution_id = accepted.stdout.strip()
    assert f"submission {execution_id}: accepted" in accepted.stderr
    urgent = ws.cli("urgency", execution_id, "high", "--wait", "--wait-timeout", "60")
    assert f"urgency high of {execution_id}: accepted" in urgent.stderr
    cancelled = ws.cli("cancel", execution_id, "--wait", "--wait-timeout", "60")
    assert f"cancel of {execution_id}: accepted" in cancelled.stderr

    settings["tiers"] = {"strategist_min_equity_usdt": "1000000000000"}  # more than the sim account holds
    ws.config.write_text(yaml.safe_dump(settings, sort_keys=False))
    daemon.stop()
    ws.daemon(speed=CALM).wait_ready()
    rejected = ws.cli(*SUBMIT, "--duration", "15m", "--wait", "--wait-timeout", "60", check=False)
    assert rejected.returncode == 1, rejected.stderr
    assert "rejected by the daemon: tier: twap execution requires the Strategist tier" in rejected.stderr
    status = json.loads(ws.cli("status", rejected.stdout.strip(), "--json").stdout)
    assert status["state"] == "rejected"
