"""The daemon on PostgreSQL, end to end: ``genesis run --venue sim --db postgresql+psycopg://...``
as a real process (scaled clock), a TWAP submitted with the CLI against the same URL, its
events and projections in PostgreSQL; a second daemon waits in standby (the account lease)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from genesis.cli import main
from tests.test_daemon_process import EXIT_TIMEOUT, FAST, READY_TIMEOUT, ROOT, genesis_env, wait_for

pytestmark = pytest.mark.slow
SLOW_ENOUGH = "60"


class PgDaemon:
    def __init__(self, url: URL, root: Path, n: int = 0, args: tuple[str, ...] = (), speed: str = FAST):
        self.log_path = root / f"daemon-{n}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "genesis", "run", "--venue", "sim", "--speed", speed,
                 "--db", url.render_as_string(hide_password=False),
                 "--config", str(ROOT / "config" / "runtime.yaml"), *args],
                cwd=root, env=genesis_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        return any(_event(line) == "daemon_ready" for line in self.log_text().splitlines())


def _event(line: str) -> Any:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("event") if isinstance(record, dict) else None


def test_a_twap_runs_end_to_end_on_postgresql(pg_url: URL, tmp_path: Path) -> None:
    db = pg_url.render_as_string(hide_password=False)
    # 60x: the 15-minute window takes 15 wall seconds, so a daemon starved of CPU by a loaded
    # machine still completes it (at 600x its slices came late and the window ended short)
    daemon = PgDaemon(pg_url, tmp_path, speed=SLOW_ENOUGH)
    engine = create_engine(pg_url)
    second: PgDaemon | None = None
    try:
        wait_for(daemon.ready, "daemon_ready", READY_TIMEOUT)
        submitted = CliRunner().invoke(main, ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "0.5",
                                              "--duration", "15m", "--id", "pg-twap", "--db", db])
        assert submitted.exit_code == 0, submitted.output
        execution_id = submitted.stdout.strip()

        def state() -> str | None:
            with engine.connect() as conn:
                return conn.execute(text("SELECT state FROM executions WHERE execution_id = :e"),
                                    {"e": execution_id}).scalar()
        wait_for(lambda: state() == "completed", "the TWAP to complete", 60)

        second = PgDaemon(pg_url, tmp_path, 1)  # the account's lease is held: a standby
        wait_for(lambda: "lease_standby" in second.log_text(), "the second daemon in standby", READY_TIMEOUT)
        second.proc.terminate()
        assert second.proc.wait(EXIT_TIMEOUT) == 0 and "daemon_ready" not in second.log_text()
        refused = CliRunner().invoke(main, ["db", "rebuild-projections", "--db", db])
        assert refused.exit_code != 0 and "stop it first" in refused.stderr

        daemon.proc.terminate()
        assert daemon.proc.wait(EXIT_TIMEOUT) == 0, daemon.log_text()[-3000:]

        with engine.connect() as conn:
            seqs = list(conn.execute(text("SELECT sequence_number FROM events ORDER BY 1")).scalars())
            row = conn.execute(text("SELECT target_qty, filled_qty FROM executions WHERE execution_id = :e"),
                               {"e": execution_id}).one()
            fills = conn.execute(text("SELECT sum(qty) FROM fills WHERE execution_id = :e"),
                                 {"e": execution_id}).scalar()
            commands = conn.execute(text("SELECT kind, outcome FROM commands")).all()
            live = {t: conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).all()
                    for t in ("executions", "execution_slices", "child_orders", "fills")}
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 10
        assert row.target_qty == row.filled_qty == fills == Decimal("0.5")
        assert [tuple(c) for c in commands] == [("submit", "accepted")]

        rebuilt = CliRunner().invoke(main, ["db", "rebuild-projections", "--db", db])  # no daemon now
        assert rebuilt.exit_code == 0, rebuilt.output
        with engine.connect() as conn:
            assert {t: conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).all() for t in live} == live
    finally:
        for each in (daemon, second):
            if each is not None and each.proc.poll() is None:
                each.proc.kill()
                each.proc.wait(10)
        engine.dispose()
