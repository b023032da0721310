"""Account leases with real daemon processes on one PostgreSQL database and the local paper
exchange (a process of its own, read through ``GET /admin/orders``):

- fencing: daemon A works a TWAP; its lease is stolen (expired in SQL, claimed by another
  owner); A's next intent is refused by the commit's fencing check, A stops working the
  account (back to standby, the execution not failed) and the exchange receives no order
  A did not record before the steal;
- failover: the leader is SIGKILLed mid-execution; the standby claims the lease once it
  expires, recovers the execution, reconciles its child orders and completes it: no client
  order id twice on the exchange, no overfill; SIGTERM releases the lease at once.
"""

from __future__ import annotations

import json
import secrets
import signal
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
from genesis.paper.local import free_port, get_json
from tests.test_daemon_process import EXIT_TIMEOUT, READY_TIMEOUT, genesis_env, wait_for

pytestmark = pytest.mark.slow

START = "2025-06-10T13:00:00Z"


class Cluster:
    """A paper exchange and any number of daemons on ``url``, all logging under ``root``."""

    def __init__(self, url: URL, root: Path, speed: str = "60"):
        self.url, self.root = url, root
        self.db = url.render_as_string(hide_password=False)
        self.port = free_port()
        self.exchange = f"http://127.0.0.1:{self.port}"
        self.env = genesis_env(GENESIS_API_KEY="ha-" + secrets.token_hex(8), GENESIS_API_SECRET=secrets.token_hex(16))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.paper = self._start("exchange", ["paper-exchange", "--port", str(self.port), "--state",
                                              str(root / "exchange.db"), "--speed", speed, "--start", START])
        wait_for(lambda: self._ping(), "the paper exchange to listen", READY_TIMEOUT)
        self.engine = create_engine(url)

    def _ping(self) -> bool:
        try:
            return get_json(self.exchange + "/api/v3/ping") == {}
        except OSError:
            return False

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "genesis", *args], cwd=self.root, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def daemon(self, name: str, lease_seconds: str) -> subprocess.Popen[bytes]:
        return self._start(name, ["run", "--venue", "ccxt:binance", "--exchange-url", self.exchange,
                                  "--paper-clock", "--db", self.db, "--lease-seconds", lease_seconds])

    def log(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in (self.root / f"{name}.log").read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return [r for r in out if isinstance(r, dict)]

    def logged(self, name: str, event: str) -> list[dict[str, Any]]:
        return [r for r in self.log(name) if r.get("event") == event]

    def submit(self, qty: str, duration: str) -> str:
        done = CliRunner().invoke(main, ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", qty,
                                         "--algo", "twap", "--duration", duration, "--db", self.db])
        assert done.exit_code == 0, done.output
        return done.stdout.strip()

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def column(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).scalars())

    def orders(self) -> list[dict[str, Any]]:
        return get_json(self.exchange + "/admin/orders")

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.engine.dispose()


@pytest.fixture
def cluster(pg_db: URL, tmp_path: Path):  # type: ignore[no-untyped-def]
    c = Cluster(pg_db, tmp_path)
    try:
        yield c
    finally:
        c.close()


def _intents(c: Cluster, after_sequence: int = 0) -> list[str]:
    return c.column("SELECT CAST(event_data AS jsonb)->>'client_order_id' FROM events WHERE event_type = 'OrderIntended' "
                    "AND sequence_number > :s ORDER BY sequence_number", s=after_sequence)


def test_a_daemon_whose_lease_was_stolen_records_no_intent_and_sends_nothing_more(cluster: Cluster) -> None:
    c = cluster
    a = c.daemon("daemon-a", lease_seconds="60")  # renewals every 20 s: the fencing check sees the steal first
    wait_for(lambda: c.logged("daemon-a", "daemon_ready"), "daemon A ready", READY_TIMEOUT)
    execution_id = c.submit("2", "30m")
    wait_for(lambda: len(_intents(c)) >= 2, "daemon A to send two slices", 60)

    # the steal: A's lease expired and claimed by another owner, on the database's clock
    with c.engine.begin() as conn:
        conn.execute(text("UPDATE leases SET expires_at = now() - interval '1 second'"))
        stolen = conn.execute(text(
            "UPDATE leases SET owner = 'thief:1:00', epoch = epoch + 1, expires_at = now() + interval '1 hour' "
            "RETURNING epoch")).scalar()
        at_steal = conn.execute(text("SELECT max(sequence_number) FROM events")).scalar()
    recorded_before = set(_intents(c))

    wait_for(lambda: c.logged("daemon-a", "lease_lost"), "daemon A to find its lease lost", 60)
    [lost] = c.logged("daemon-a", "lease_lost")
    assert "fencing check refused" in lost["reason"]
    wait_for(lambda: c.logged("daemon-a", "daemon_standby_again"), "daemon A back in standby", 60)
    assert a.poll() is None  # still running, in standby

    assert _intents(c, at_steal) == []  # no intent recorded after the steal
    assert {o["clientOrderId"] for o in c.orders()} <= recorded_before  # nothing sent A had not recorded
    assert c.scalar("SELECT state FROM executions WHERE execution_id = :e", e=execution_id) == "running"
    assert c.scalar("SELECT count(*) FROM events WHERE event_type = 'ExecutionFailed'") == 0
    assert c.scalar("SELECT owner || ' ' || epoch FROM leases") == f"thief:1:00 {stolen}"
    a.send_signal(signal.SIGTERM)
    assert a.wait(EXIT_TIMEOUT) == 0


def test_the_standby_completes_the_execution_after_the_leader_is_killed(cluster: Cluster) -> None:
    c = cluster
    leader = c.daemon("leader", lease_seconds="3")
    wait_for(lambda: c.logged("leader", "daemon_ready"), "the leader ready", READY_TIMEOUT)
    standby = c.daemon("standby", lease_seconds="3")
    wait_for(lambda: c.logged("standby", "lease_standby"), "the standby waiting", READY_TIMEOUT)
    # 16 minutes at the paper clock's 60x: 16 s, so that the lease's expiry (3 s) and the
    # standby's recovery on a loaded machine leave the rest of the window for its slices
    execution_id = c.submit("1.5", "16m")
    wait_for(lambda: len(_intents(c)) >= 3, "the leader to send three slices", 60)
    leader.send_signal(signal.SIGKILL)
    leader.wait(10)
    sent_by_leader = len(_intents(c))

    wait_for(lambda: c.logged("standby", "daemon_ready"), "the standby to take over", 60)
    wait_for(lambda: c.scalar("SELECT state FROM executions WHERE execution_id = :e", e=execution_id)
             in ("completed", "failed", "cancelled", "expired"), "the execution to end", 120)
    assert c.scalar("SELECT state FROM executions WHERE execution_id = :e", e=execution_id) == "completed"
    assert len(_intents(c)) > sent_by_leader  # the standby sent the rest

    orders = c.orders()
    ids = [o["clientOrderId"] for o in orders]
    assert len(ids) == len(set(ids))  # no client order id twice
    executed = sum(Decimal(o["executedQty"]) for o in orders)
    filled = Decimal(str(c.scalar("SELECT filled_qty FROM executions WHERE execution_id = :e", e=execution_id)))
    assert executed == filled == Decimal("1.5")  # no overfill, and the records agree

    standby.send_signal(signal.SIGTERM)  # a graceful stop releases the lease at once
    assert standby.wait(EXIT_TIMEOUT) == 0
    assert c.scalar("SELECT expires_at < now() FROM leases") is True


def test_sigterm_releases_the_lease_so_the_standby_takes_over_before_it_would_expire(cluster: Cluster) -> None:
    c = cluster
    leader = c.daemon("leader", lease_seconds="600")  # expiry would take ten minutes
    wait_for(lambda: c.logged("leader", "daemon_ready"), "the leader ready", READY_TIMEOUT)
    standby = c.daemon("standby", lease_seconds="600")
    wait_for(lambda: c.logged("standby", "lease_standby"), "the standby waiting", READY_TIMEOUT)
    [claimed] = c.logged("leader", "lease_claimed")
    leader.send_signal(signal.SIGTERM)
    assert leader.wait(EXIT_TIMEOUT) == 0
    assert c.logged("leader", "lease_released")
    wait_for(lambda: c.logged("standby", "daemon_ready"), "the standby to take over", 60)
    [taken] = c.logged("standby", "lease_claimed")
    [(account, epoch)] = claimed["leases"].items()
    assert taken["leases"] == {account: epoch + 1}
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(EXIT_TIMEOUT) == 0


def test_a_warm_standby_loads_the_venue_markets_before_it_holds_the_lease_and_not_again_after(
        cluster: Cluster) -> None:
    c = cluster
    leader = c.daemon("leader", lease_seconds="600")
    wait_for(lambda: c.logged("leader", "daemon_ready"), "the leader ready", READY_TIMEOUT)
    standby = c.daemon("standby", lease_seconds="600")
    wait_for(lambda: c.logged("standby", "lease_standby"), "the standby waiting", READY_TIMEOUT)
    [warm] = c.logged("standby", "venue_markets_loaded")  # already in standby: store and venue open
    assert warm["markets"] > 0 and warm["lease_held"] is False
    leader.send_signal(signal.SIGTERM)
    assert leader.wait(EXIT_TIMEOUT) == 0
    wait_for(lambda: c.logged("standby", "daemon_ready"), "the standby to take over", 60)
    events = [r["event"] for r in c.log("standby")]
    assert events.count("venue_markets_loaded") == 1  # the claim did not load them again
    assert events.index("venue_markets_loaded") < events.index("lease_claimed") < events.index("daemon_ready")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(EXIT_TIMEOUT) == 0
