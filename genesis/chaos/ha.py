"""``make chaos-ha`` and the failover bench: several daemons on one PostgreSQL database and
the paper exchange, the leader killed or paused past its lease again and again.

``HaCluster`` runs ``genesis paper-exchange`` and any number of ``genesis run --venue
ccxt:binance`` daemons (one API key: one account, so one leader and standbys) on a PostgreSQL
URL. ``leader()`` reads the lease owner (``host:pid:random``) from the ``leases`` table.
``verdict()`` checks the exchange's records against the event log: no client order id twice,
every exchange order intended first, executed quantity = recorded fills <= target, every
execution ended ``completed`` or ``expired`` (its window ran out while the faults held it up:
never ``failed``), sequence numbers gap-free.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from genesis.chaos.procs import ChaosError, Proc, child_env, wait_until
from genesis.chaos.verdict import Verdict
from genesis.domain.ids import parse_client_order_id
from genesis.paper.local import free_port, get_json

START = "2025-06-10T13:00:00Z"


class HaCluster:
    """A paper exchange and numbered daemons on ``url``; logs in ``workdir``."""

    def __init__(self, url: URL, workdir: Path, lease_seconds: float = 3.0, speed: float = 60.0):
        self.url, self.dir, self.lease_seconds = url, workdir, lease_seconds
        self.env = child_env(GENESIS_API_KEY="ha-" + secrets.token_hex(8), GENESIS_API_SECRET=secrets.token_hex(16))
        self.engine = create_engine(url)
        self.daemons: dict[int, Proc] = {}
        self._next = 0
        self.exchange = f"http://127.0.0.1:{free_port()}"
        self.paper = Proc("paper exchange", ["paper-exchange", "--port", self.exchange.rsplit(":", 1)[1], "--state",
                                             str(workdir / "paper.db"), "--speed", f"{speed:g}", "--start", START],
                          workdir / "paper.log", self.env, workdir)
        wait_until(lambda: get_json(self.exchange + "/api/v3/ping") == {}, 30, "the paper exchange", [self.paper])

    def start_daemon(self) -> Proc:
        n, self._next = self._next, self._next + 1
        self.daemons[n] = Proc(f"daemon-{n}", ["run", "--venue", "ccxt:binance", "--exchange-url", self.exchange,
                                               "--paper-clock", "--db", self.url.render_as_string(hide_password=False),
                                               "--lease-seconds", f"{self.lease_seconds:g}"],
                               self.dir / f"daemon-{n}.log", self.env, self.dir)
        return self.daemons[n]

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def leader(self) -> tuple[Proc, int] | None:
        """The daemon whose lease is live, with its epoch; None while nobody holds it."""
        rows = self.rows("SELECT owner, epoch FROM leases WHERE expires_at > clock_timestamp()")
        for owner, epoch in rows:
            pid = int(owner.split(":")[1])
            for proc in self.daemons.values():
                if proc.pid == pid and proc.alive():
                    return proc, epoch
        return None

    def wait_leader(self, seconds: float = 60, other_than: int = 0) -> tuple[Proc, int]:
        """A working leader (its lease live and ``daemon_ready`` logged) at an epoch above ``other_than``."""
        def ready() -> tuple[Proc, int] | None:
            found = self.leader()
            if found and found[1] > other_than and found[0].output().count("daemon_ready") > 0:
                return found
            return None
        return wait_until(ready, seconds, "a leader", [self.paper])

    def submit(self, qty: str, duration: str) -> str:
        out = subprocess.run([sys.executable, "-m", "genesis", "submit", "--symbol", "BTC/USDT", "--side", "buy",
                              "--qty", qty, "--algo", "twap", "--duration", duration,
                              "--db", self.url.render_as_string(hide_password=False)],
                             env=self.env, cwd=self.dir, capture_output=True, text=True)
        if out.returncode != 0:
            raise ChaosError(f"genesis submit exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout.strip()

    def intents_after(self, sequence: int) -> int:
        return self.rows("SELECT count(*) FROM events WHERE event_type = 'OrderIntended' AND sequence_number > :s",
                         s=sequence)[0][0]

    def last_sequence(self) -> int:
        return self.rows("SELECT coalesce(max(sequence_number), 0) FROM events")[0][0]

    def live_executions(self) -> int:
        return self.rows("SELECT count(*) FROM executions WHERE state NOT IN ('completed', 'cancelled', "
                         "'expired', 'failed')")[0][0]

    def pause(self, proc: Proc, seconds: float) -> None:
        """SIGSTOP ``proc`` for ``seconds`` (past its lease), then SIGCONT."""
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(proc.pid, signal.SIGCONT)

    def restart_postgres(self) -> float:
        """Restart the PostgreSQL server itself (``pg_ctlcluster ... main restart``: every
        connection of every daemon is cut); the seconds it took. The server is shared (other
        databases' clients see the restart too): do it rarely."""
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        began = time.monotonic()
        out = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise ChaosError(f"pg_ctlcluster restart exited {out.returncode}: {out.stderr.strip()}")
        self.engine.dispose()  # this process's pooled connections died with the server
        return time.monotonic() - began

    def verdict(self) -> Verdict:
        v = Verdict()
        orders = get_json(self.exchange + "/admin/orders")
        ids = [o["clientOrderId"] for o in orders]
        v.none("client order ids sent twice", sorted({i for i in ids if ids.count(i) > 1}))
        intended = {r[0] for r in self.rows("SELECT CAST(event_data AS jsonb)->>'client_order_id' FROM events "
                                            "WHERE event_type = 'OrderIntended'")}
        v.none("exchange orders never intended", sorted(set(ids) - intended))
        executed: dict[str, Decimal] = {}
        for o in orders:
            execution_id = parse_client_order_id(o["clientOrderId"])[0]
            executed[execution_id] = executed.get(execution_id, Decimal(0)) + Decimal(o["executedQty"])
        for execution_id, state, target, filled, reason in self.rows(
                "SELECT execution_id, state, target_qty, filled_qty, completion_reason FROM executions"):
            v.counts[state] = v.counts.get(state, 0) + 1
            if state not in ("completed", "expired"):  # expired: its window ran out during the faults
                v.fail(f"execution {execution_id} ended {state}")
            elif not reason:
                v.fail(f"execution {execution_id} ended {state} with no recorded reason")
            on_exchange = executed.get(execution_id, Decimal(0))
            if not (Decimal(filled) == on_exchange <= Decimal(target)):
                v.fail(f"execution {execution_id}: target {target}, recorded {filled}, exchange {on_exchange}")
        seqs = [r[0] for r in self.rows("SELECT sequence_number FROM events ORDER BY 1")]
        if seqs != list(range(1, len(seqs) + 1)):
            v.fail("event sequence numbers have gaps")
        v.counts["events"] = len(seqs)
        v.none("aggregates whose versions are not 1..n without gaps", [r[0] for r in self.rows(
            "SELECT aggregate_id FROM events GROUP BY aggregate_id "
            "HAVING min(aggregate_version) <> 1 OR max(aggregate_version) <> count(*)")])
        self._projections(v)
        return v

    def _projections(self, v: Verdict) -> None:
        """The projections rebuilt from the events (in a transaction rolled back after) equal
        the live ones, row for row. The daemons must be stopped."""
        from genesis.store import tables as tables_
        from genesis.store.projector import rebuild_sync

        def snapshot(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
            out = {}
            for table in tables_.PROJECTION_TABLES:
                keys = ", ".join(c.name for c in table.primary_key.columns)
                out[table.name] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {keys}"))]
            return out

        with self.engine.connect() as conn:
            with conn.begin() as transaction:
                live = snapshot(conn)
                rebuild_sync(conn)
                rebuilt = snapshot(conn)
                transaction.rollback()
        diffs = [(name, len(live[name]), len(rebuilt[name])) for name in live if live[name] != rebuilt[name]]
        v.none("projections rebuilt from the events differ from the live ones", diffs)
        v.counts["projections"] = "equal" if not diffs else "DIFFER"

    def close(self) -> None:
        for proc in [*self.daemons.values(), self.paper]:
            if proc.alive():
                proc.kill9()
        self.engine.dispose()
