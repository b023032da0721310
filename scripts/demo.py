#!/usr/bin/env python3
"""``make demo``: a TWAP parent order worked into the simulated market, start to finish.

A fresh ``demo.db`` is migrated, the daemon starts as a subprocess on the simulated venue (clock
300x: the 15-minute TWAP takes about 3 s), ``genesis submit`` hands it 2.5 BTC to buy, progress
is read from the database (read-only), SIGUSR1 pauses it (checked: state ``paused`` in the DB and
no child order sent), SIGUSR2 resumes it, and once it completes SIGTERM stops the daemon (exit
code 0 checked). Then a summary and SQL to try. Any failure exits 1 with the daemon log's tail.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DB, PID, LOG, CONFIG = "demo.db", "demo.pid", "demo.log", "config/runtime.yaml"
SPEED = 300  # simulated seconds per wall second: a 1-minute slice every 0.2 s
SIM_START = "2025-06-10T13:00:00Z"  # a weekday afternoon (UTC), inside the shipped candles
ORDER = ["--symbol", "BTC/USDT", "--side", "buy", "--qty", "2.5", "--algo", "twap", "--duration", "15m"]
TICK_SECONDS = 0.2
PAUSE_AT_PCT = 40
PAUSE_HOLD_SECONDS = 2.0  # wall: 10 simulated minutes at 300x
READY_TIMEOUT, STATE_TIMEOUT, FINISH_TIMEOUT, STOP_TIMEOUT = 60.0, 10.0, 40.0, 30.0
LIVE_STATES = ("pending", "running", "paused")

console = Console(highlight=False, width=max(Console().width, 100))


class DemoError(Exception):
    """A step failed; the message says which and what was seen."""


def cmdline(args: list[str]) -> str:
    return "$ genesis " + " ".join(shlex.quote(a) for a in args)


def genesis(*args: str) -> str:
    """One CLI command (``python -m genesis``) on the demo database; returns its stdout."""
    done = subprocess.run([sys.executable, "-m", "genesis", *args, "--db", DB, "--config", CONFIG],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise DemoError(f"`genesis {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def log_lines() -> list[str]:
    try:
        return Path(LOG).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


class Daemon:
    """``genesis run`` as a child process in its own session, its JSON log in demo.log."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_clock: datetime | None = None  # the simulated clock in the daemon_ready line
        self.ready_wall: datetime | None = None  # that line's wall-clock timestamp

    def start(self) -> None:
        args = ["run", "--db", DB, "--config", CONFIG, "--speed", str(SPEED), "--sim-start", SIM_START]
        console.print(f"[bold]{cmdline(args)} 2> {LOG} &[/]")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        with open(LOG, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "genesis", *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise DemoError(f"the daemon (pid {self.pid}) died with exit code {self.proc.returncode}")

    def wait_ready(self) -> None:
        """Until the pid file names our child and the log says daemon_ready."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            ready = [json.loads(line) for line in log_lines() if '"daemon_ready"' in line]
            if ready and Path(PID).exists() and Path(PID).read_text().strip() == str(self.pid):
                self.ready_clock = datetime.fromisoformat(ready[0]["clock"])
                self.ready_wall = datetime.fromisoformat(ready[0]["timestamp"].replace("Z", "+00:00"))
                return
            time.sleep(0.05)
        raise DemoError(f"the daemon was not ready after {READY_TIMEOUT:.0f} s (no pid file or no daemon_ready)")

    def sim_now(self) -> datetime:
        """The daemon's simulated clock, extrapolated from its daemon_ready line."""
        assert self.ready_clock is not None and self.ready_wall is not None
        return self.ready_clock + (datetime.now(timezone.utc) - self.ready_wall) * SPEED

    def signal(self, sig: signal.Signals, comment: str) -> None:
        console.print(f"[bold]$ kill -{sig.name[3:]} {self.pid}[/]   [dim]# {comment}[/]")
        self.check_alive()
        os.kill(self.pid, sig)
        time.sleep(TICK_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then insist on exit code 0."""
        assert self.proc is not None
        self.signal(signal.SIGTERM, "graceful stop")
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DemoError(f"the daemon did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM") from None
        if code != 0:
            raise DemoError(f"the daemon exited with code {code} after SIGTERM (expected 0)")
        console.print("  daemon stopped, exit code 0")

    def kill(self) -> None:
        """Whatever happened, leave no daemon behind: SIGTERM, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def fresh_files() -> None:
    """Remove the previous demo's files, unless its daemon still runs on them (it holds the lock)."""
    if Path(PID).exists():
        fd = os.open(PID, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError(f"a daemon still runs on {DB} (pid {Path(PID).read_text().strip()}); "
                            "stop it with kill -TERM <pid>") from None
        finally:
            os.close(fd)
    for name in (DB, DB + "-wal", DB + "-shm", DB + "-journal", PID, LOG):
        Path(name).unlink(missing_ok=True)


def read_only() -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{DB}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


class Watcher:
    """Progress of one execution, read from the projection tables every tick."""

    def __init__(self, daemon: Daemon, conn: sqlite3.Connection, execution_id: str):
        self.daemon, self.conn, self.execution_id = daemon, conn, execution_id

    def row(self) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT state, filled_qty, target_qty, slices_executed, slice_count, avg_price, completion_reason,"
            " (SELECT count(*) FROM child_orders c WHERE c.execution_id = e.execution_id) AS orders"
            " FROM executions e WHERE execution_id = ?", (self.execution_id,)).fetchone()

    def show(self) -> sqlite3.Row | None:
        self.daemon.check_alive()
        row = self.row()
        sim = f"  sim {self.daemon.sim_now():%H:%M:%S}"
        if row is None:
            console.print(f"{sim}  [dim]queued: the daemon takes new commands within 0.25 s[/]")
            return None
        filled, target = Decimal(row["filled_qty"]), Decimal(row["target_qty"])
        blocks = int(filled / target * 16)
        avg = f"{Decimal(row['avg_price']):,.2f}" if row["avg_price"] else "-"
        colour = {"running": "green", "paused": "yellow", "completed": "bold green"}.get(row["state"], "red")
        console.print(f"{sim}  [{colour}]{row['state']:<9}[/] {'█' * blocks}{'░' * (16 - blocks)} "
                      f"{filled / target * 100:5.1f}%  {filled:.5f}/{target} BTC  "
                      f"slices {row['slices_executed']:>2}/{row['slice_count'] or '-':<2}  avg {avg}")
        return row

    def until(self, states: set[str], timeout: float, pct: int | None = None) -> sqlite3.Row:
        """Show progress every tick until the state is in ``states`` (or ``pct`` % is filled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.show()
            if row is not None:
                if row["state"] in states:
                    return row
                if row["state"] not in LIVE_STATES:
                    raise DemoError(f"execution {self.execution_id} ended {row['state']} "
                                    f"({row['completion_reason']}) where {'/'.join(sorted(states))} was expected")
                if pct is not None and Decimal(row["filled_qty"]) * 100 >= Decimal(row["target_qty"]) * pct:
                    return row
            time.sleep(TICK_SECONDS)
        raise DemoError(f"execution {self.execution_id} was not {'/'.join(sorted(states))} after {timeout:.0f} s")

    def hold_paused(self, paused: sqlite3.Row) -> None:
        """Stay paused for a while and check that nothing moves meanwhile."""
        deadline = time.monotonic() + PAUSE_HOLD_SECONDS
        while time.monotonic() < deadline:
            time.sleep(TICK_SECONDS)
            row = self.show()
            assert row is not None
            if (row["state"], row["orders"], row["filled_qty"]) != ("paused", paused["orders"], paused["filled_qty"]):
                raise DemoError(f"while paused the execution moved: state {row['state']}, "
                                f"{row['orders']} child orders (were {paused['orders']})")
        console.print(f"  [yellow]✓ paused {PAUSE_HOLD_SECONDS:.0f} s wall = {PAUSE_HOLD_SECONDS * SPEED / 60:.0f} "
                      f"simulated minutes: state 'paused' in the database, still {paused['orders']} child orders[/]")


def summary(conn: sqlite3.Connection, execution_id: str, wall_seconds: float) -> None:
    """Recompute the numbers from the fills, check them against the projection, print them."""
    e = conn.execute("SELECT * FROM executions WHERE execution_id = ?", (execution_id,)).fetchone()
    fills = conn.execute("SELECT qty, price, liquidity FROM fills WHERE execution_id = ?", (execution_id,)).fetchall()
    orders = conn.execute("SELECT filled_qty FROM child_orders WHERE execution_id = ?", (execution_id,)).fetchall()
    filled = sum((Decimal(f["qty"]) for f in fills), Decimal(0))
    maker = sum((Decimal(f["qty"]) for f in fills if f["liquidity"] == "maker"), Decimal(0))
    notional = sum((Decimal(f["qty"]) * Decimal(f["price"]) for f in fills), Decimal(0))
    target, arrival = Decimal(e["target_qty"]), Decimal(e["arrival_price"])
    avg = notional / filled
    is_bps = ((avg - arrival) / arrival * 10_000).quantize(Decimal("0.0001"))  # a buy: paying more is worse
    # each child is sized from what is left, so an order sent twice would overshoot the parent
    if filled != target or Decimal(e["filled_qty"]) != target:
        raise DemoError(f"fills sum to {filled}, the projection says {e['filled_qty']}, the parent is {target}")
    if sum((Decimal(o["filled_qty"]) for o in orders), Decimal(0)) != filled:
        raise DemoError("the child orders' filled quantities do not add up to the fills")
    if is_bps != Decimal(e["implementation_shortfall_bps"]):
        raise DemoError(f"shortfall from the fills {is_bps} bps != stored {e['implementation_shortfall_bps']} bps")
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in [
        ("execution", f"{execution_id}  BTC/USDT buy, TWAP over {e['duration_seconds'] // 60} min, "
                      f"{e['state']} ({e['completion_reason']})"),
        ("filled", f"{filled} / {target} BTC in {e['slices_executed']} slices, {len(orders)} child orders, "
                   f"{len(fills)} fills ({maker} BTC as maker)"),
        ("average price", f"{avg:,.2f} USDT"),
        ("arrival price", f"{arrival:,.2f} USDT (mid when the execution started)"),
        ("slippage", f"{is_bps:+.2f} bps vs arrival (implementation shortfall; negative = better than arrival)"),
        ("notional", f"{notional:,.2f} USDT"),
        ("fees", f"{Decimal(e['fees_usdt']):,.2f} USDT"),
        ("simulated time", f"{e['started_at'][11:19]} -> {e['ended_at'][11:19]} UTC, "
                           f"{e['paused_seconds']:.0f} s of it paused (the window end moved by as much)"),
        ("demo wall time", f"{wall_seconds:.1f} s"),
    ]:
        table.add_row(k, v)
    console.rule("[bold]summary")
    console.print(table)


def sql_examples(conn: sqlite3.Connection, execution_id: str) -> None:
    queries = [
        ("every slice of the demo order (its output below)",
         "SELECT slice_number AS slice, substr(executed_at, 12, 8) AS at, executed_quantity AS qty, "
         "printf('%.2f', execution_price) AS price, printf('%.2f', market_price) AS mid, slippage_bps, "
         f"printf('%.2f', fee) AS fee FROM twap_slice_history WHERE execution_id = '{execution_id}' "
         "ORDER BY slice_number"),
        ("what happened, in order: the event log (order and fill events left out)",
         "SELECT sequence_number AS seq, substr(occurred_at, 12, 8) AS at, event_type, "
         "json_extract(event_data, '$.slice_index') AS slice, "
         "coalesce(json_extract(event_data, '$.status'), json_extract(event_data, '$.reason')) AS detail "
         "FROM events WHERE event_type NOT LIKE 'Order%' AND event_type <> 'FillRecorded' "
         "ORDER BY sequence_number"),
        ("all executions with their benchmark",
         "SELECT execution_id, status, executed_quantity, twap_price, arrival_price, "
         "implementation_shortfall_bps FROM twap_executions"),
    ]
    console.rule("[bold]query it with SQL (read-only)")
    for title, sql in queries:
        console.print(f"[dim]# {title}[/]")
        console.print(f"sqlite3 -header -column 'file:{DB}?mode=ro' \"{sql}\"", soft_wrap=True, markup=False)
    cursor = conn.execute(queries[0][1])
    table = Table(*(d[0] for d in cursor.description), box=None, pad_edge=False)
    for r in cursor:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print()
    console.print(table)


def run_demo(daemon: Daemon, started: float) -> None:
    os.chdir(ROOT)
    console.rule("[bold]genesis demo: a TWAP on the simulated venue (Binance BTC/USDT candles)")
    fresh_files()
    console.print(f"[bold]{cmdline(['db', 'upgrade', '--db', DB])}[/]\n  " + genesis("db", "upgrade"))
    daemon.start()
    daemon.wait_ready()
    console.print(f"  daemon ready: pid {daemon.pid}, simulated clock {daemon.sim_now():%Y-%m-%d %H:%M} UTC, "
                  f"{SPEED}x (a minute every {60 / SPEED:.1f} s)")
    submit = ["submit", *ORDER, "--id", f"demo-{os.getpid()}"]
    console.print(f"[bold]{cmdline(submit)}[/]")
    execution_id = genesis(*submit)
    console.print(f"  execution id: [bold]{execution_id}[/]  (durably queued; the daemon takes it from the inbox)")
    conn = read_only()
    try:
        watch = Watcher(daemon, conn, execution_id)
        watch.until({"completed"}, FINISH_TIMEOUT, pct=PAUSE_AT_PCT)
        daemon.signal(signal.SIGUSR1, "pause every running execution")
        watch.hold_paused(watch.until({"paused"}, STATE_TIMEOUT))
        daemon.signal(signal.SIGUSR2, "resume every paused execution")
        watch.until({"running", "completed"}, STATE_TIMEOUT)
        time.sleep(TICK_SECONDS)
        watch.until({"completed"}, FINISH_TIMEOUT)
    finally:
        conn.close()
    daemon.stop()
    console.print(f"[bold]{cmdline(['status', execution_id])}[/]")
    console.print(genesis("status", execution_id), markup=False, soft_wrap=True)
    conn = read_only()
    try:
        summary(conn, execution_id, time.monotonic() - started)
        sql_examples(conn, execution_id)
    finally:
        conn.close()
    console.print(f"\n[dim]daemon log (JSON lines): {LOG}   database: {DB}   more: README.md, genesis --help[/]")


def main() -> int:
    started = time.monotonic()
    daemon = Daemon()
    try:
        run_demo(daemon, started)
    except (DemoError, OSError, subprocess.SubprocessError, sqlite3.Error) as exc:
        console.print("\n[bold red]demo failed:[/]", end=" ")
        console.print(str(exc), markup=False, soft_wrap=True)
        tail = log_lines()[-25:]
        if tail:
            console.print(f"[dim]last lines of {ROOT / LOG}:[/]")
            for line in tail:
                console.print(line, markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        console.print("\n[bold red]demo interrupted[/]")
        return 130
    finally:
        daemon.kill()
    console.print(f"[bold green]demo finished in {time.monotonic() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
