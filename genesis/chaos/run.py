"""One seeded chaos run: the paper exchange (faults on) and the daemon (ccxt client) as real
processes; the daemon SIGKILLed at random moments and at forced kill points, restarted each
time, while TWAP and VWAP parents keep arriving; then a clean drain and the verdict.

``run_chaos(workdir, ChaosSpec(seed=...))`` -> ``ChaosResult``. Same seed, same schedule of
kills and submissions (process timing still varies, so outcomes may differ in detail).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from genesis.analytics.sql import readonly_uri
from genesis.chaos.procs import ChaosError, Proc, child_env, wait_until
from genesis.paper.local import free_port, get_json
from genesis.chaos.verdict import TERMINAL, Verdict, check
from genesis.engine.killpoints import KILL_POINTS

CONFIG = """\
engine: {command_poll_seconds: 0.2, drain_timeout_seconds: 10, venue_retry_seconds: 1.0}
router: {maker_first: true, maker_timeout_seconds: %(maker_timeout)s}
twap: {min_duration_seconds: 120, max_duration_seconds: 7200, default_duration_seconds: 900}
risk: {max_position_base: {BTC/USDT: 1000, ETH/USDT: 20000}}
logging: {level: info}
"""
# (symbol, smallest, largest parent quantity, decimals)
MARKETS = (("BTC/USDT", Decimal("0.05"), Decimal("0.8"), 3), ("ETH/USDT", Decimal("1"), Decimal("20"), 2))


@dataclass(frozen=True, slots=True)
class ChaosSpec:
    seed: int
    random_kills: int = 50
    forced_per_point: int = 3  # SIGKILL forced at each of genesis.engine.killpoints.KILL_POINTS
    concurrency: int = 3  # parents live at once (new ones are submitted while kills remain)
    speed: float = 60.0  # simulated seconds per wall second (the exchange's clock; the daemon follows)
    durations_seconds: tuple[int, int] = (600, 1500)  # simulated window of each parent
    faults: str = "p_5xx=0.1,p_timeout_after_accept=0.05,p_429=0.05,p_drop_response=0.05"
    hold_seconds: float = 11.0  # a "timeout after accept" holds the response past ccxt's 10 s
    max_uptime_seconds: float = 4.0  # a random kill lands up to this long after the daemon is ready
    early_kill_share: float = 0.15  # share of random kills during start-up and recovery
    kill_point_timeout_seconds: float = 30.0
    drain_timeout_seconds: float = 240.0
    maker_timeout_seconds: float = 30.0  # maker orders rest long enough to fill across candles
    start: str = "2025-06-10T13:00:00Z"
    api_key: str = "chaos-key-0001"
    api_secret: str = "chaos-secret-0001"


@dataclass
class ChaosResult:
    verdict: Verdict
    seed: int
    wall_seconds: float
    kills: Counter = field(default_factory=Counter)  # "random", "early" and each kill point
    submitted: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the run itself misbehaved (daemon exited on its own...)
    workdir: Path = Path(".")

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems

    def line(self) -> str:
        forced = ",".join(f"{p}:{self.kills[p]}" for p in KILL_POINTS)
        extra = {"seed": self.seed, "kills": sum(self.kills.values()),
                 "random_kills": self.kills["random"] + self.kills["early"], "forced": forced,
                 "submitted": len(self.submitted),
                 "faults": ",".join(f"{k}:{v}" for k, v in sorted(self.faults.items())) or "none",
                 "wall_s": f"{self.wall_seconds:.0f}"}
        text = self.verdict.line(extra)
        if self.problems:
            text = text.replace("chaos verdict: PASS", "chaos verdict: FAIL", 1)
            text += f" run_problems={len(self.problems)}"
        return text


class _Run:
    def __init__(self, workdir: Path, spec: ChaosSpec, echo: Callable[[str], None], verbose: bool = False):
        self.dir, self.spec, self.echo, self.verbose = workdir, spec, echo, verbose
        self.rng = random.Random(spec.seed)
        self.db, self.paper_db = workdir / "daemon.db", workdir / "paper.db"
        self.config = workdir / "chaos.yaml"
        self.env = child_env(GENESIS_API_KEY=spec.api_key, GENESIS_API_SECRET=spec.api_secret)
        self.result = ChaosResult(Verdict(), spec.seed, 0.0, workdir=workdir)
        self.paper: Proc | None = None
        self.daemon: Proc | None = None
        self.url = ""
        self._engine: Any = None

    # -- processes ---------------------------------------------------------------------------
    def start_paper(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        faults = f"{self.spec.faults},hold_seconds={self.spec.hold_seconds},seed={self.spec.seed}"
        self.paper = Proc("paper exchange", ["paper-exchange", "--port", str(port), "--state", str(self.paper_db),
                                             "--speed", str(self.spec.speed), "--start", self.spec.start,
                                             "--faults", faults], self.dir / "paper.log", self.env, self.dir)
        wait_until(lambda: get_json(self.url + "/api/v3/ping") == {}, 30, "the paper exchange", [self.paper])

    def start_daemon(self, kill_point: str | None = None) -> Proc:
        chaos = ["--kill-point", kill_point] if kill_point else []
        self.daemon = Proc("daemon", ["run", "--venue", "ccxt:binance", "--exchange-url", self.url, "--paper-clock",
                                      *chaos, "--db", str(self.db), "--config", str(self.config)],
                           self.dir / "daemon.log", self.env,
                           self.dir)
        return self.daemon

    def wait_ready(self, daemon: Proc, seconds: float = 60) -> None:
        assert self.paper is not None
        wait_until(lambda: "daemon_ready" in daemon.output(), seconds, "the daemon to be ready", [daemon, self.paper])

    # -- submissions ---------------------------------------------------------------------------
    def engine(self) -> Any:
        if self._engine is None:
            from genesis.store import migrate
            from genesis.store.db import sync_engine

            migrate.upgrade(self.db)
            self._engine = sync_engine(self.db)
        return self._engine

    def live_count(self) -> int:
        """Submitted parents not yet ended (a submission the daemon refused is not live)."""
        self.engine()
        conn = sqlite3.connect(readonly_uri(self.db), uri=True, timeout=10)
        try:
            states = dict(conn.execute("SELECT execution_id, state FROM executions").fetchall())
            refused = dict(conn.execute("SELECT execution_id, detail FROM commands WHERE kind = 'submit' "
                                        "AND outcome = 'rejected'").fetchall())
        finally:
            conn.close()
        for execution_id, reason in refused.items():
            note = f"submission {execution_id} rejected by the daemon: {reason}"
            if note not in self.result.problems:
                self.result.problems.append(note)
        return sum(1 for e in self.result.submitted if states.get(e) not in TERMINAL and e not in refused)

    def top_up(self) -> None:
        """Submit parents (through the CLI's own validation and inbox) until ``concurrency`` are live."""
        from genesis.config import load_config
        from genesis.requests import validate_submit
        from genesis.store.inbox import enqueue_submit
        from genesis.venue.instruments import SIM_INSTRUMENTS

        config = load_config(self.config)
        for _ in range(self.spec.concurrency - self.live_count()):
            n = len(self.result.submitted)
            symbol, lo, hi, places = self.rng.choice(MARKETS)
            qty = (lo + (hi - lo) * Decimal(self.rng.random())).quantize(Decimal(1).scaleb(-places))
            algo = self.rng.choice(("twap", "vwap"))
            urgency = self.rng.choice(("medium", "high", "critical")) if algo == "vwap" else None
            duration = self.rng.randrange(*self.spec.durations_seconds)
            req = validate_submit(symbol=symbol, side=self.rng.choice(("buy", "sell")), qty=str(qty), algo=algo,
                                  duration=duration, slices=None, limit_price=None,
                                  request_id=f"chaos-{self.spec.seed}-{n}", instruments=SIM_INSTRUMENTS,
                                  config=config, urgency=urgency)
            execution_id, _ = enqueue_submit(self.engine(), req)
            self.result.submitted.append(execution_id)

    # -- the run -------------------------------------------------------------------------------
    def schedule(self) -> list[str]:
        """Random kills with the forced ones spread among them, each forced kill right after a
        random one: the restart then reconciles what the random kill left open (a resting maker
        order that kept filling across candles while the daemon was down: between_fills)."""
        forced = [p for p in KILL_POINTS for _ in range(self.spec.forced_per_point)]
        self.rng.shuffle(forced)
        plan = ["random"] * self.spec.random_kills
        for i, point in reversed(list(enumerate(forced))):
            plan.insert(min(len(plan), 1 + i * len(plan) // max(1, len(forced))), point)
        return plan

    def kill_randomly(self) -> None:
        early = self.rng.random() < self.spec.early_kill_share
        delay = self.rng.uniform(0.2, 2.5) if early else self.rng.uniform(0.05, self.spec.max_uptime_seconds)
        daemon = self.start_daemon()
        if not early:
            self.wait_ready(daemon)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and daemon.alive():
            time.sleep(0.02)
        if not daemon.alive():
            self.result.problems.append(f"the daemon exited {daemon.proc.returncode} on its own\n{daemon.tail()}")
            return
        daemon.kill9()
        self.result.kills["early" if early else "random"] += 1

    def kill_at(self, point: str) -> bool:
        """Run with ``--kill-point point`` until the daemon kills itself there. False when it
        did not get there in time (then it is killed here and counted as a random kill)."""
        daemon = self.start_daemon(point)
        try:
            wait_until(lambda: not daemon.alive(), self.spec.kill_point_timeout_seconds, f"kill point {point}")
        except ChaosError:
            daemon.kill9()
            self.result.kills["random"] += 1
            return False
        if daemon.proc.returncode != -9:
            self.result.problems.append(f"the daemon exited {daemon.proc.returncode} instead of dying at "
                                        f"{point}\n{daemon.tail()}")
            return True
        self.result.kills[point] += 1
        return True

    def drain(self) -> None:
        """Run undisturbed until every submitted parent has ended, then stop with SIGTERM (exit 0)."""
        daemon = self.start_daemon()
        assert self.paper is not None
        try:
            wait_until(lambda: self.live_count() == 0, self.spec.drain_timeout_seconds,
                       "every execution to end", [daemon, self.paper], every=0.25)
        except ChaosError as exc:
            self.result.problems.append(str(exc))
        code = daemon.terminate()
        if code != 0:
            self.result.problems.append(f"the daemon exited {code} after SIGTERM\n{daemon.tail()}")

    def run(self) -> ChaosResult:
        started = time.monotonic()
        self.config.write_text(CONFIG % {"maker_timeout": self.spec.maker_timeout_seconds})
        self.config.chmod(0o600)
        try:
            self.start_paper()
            self.top_up()
            self.kill_all(started)
            self.echo("  draining: the daemon runs undisturbed until every parent has ended")
            self.drain()
            self.result.faults = self.fault_counts()
        except ChaosError as exc:  # the run could not go on: still check what it left behind
            self.result.problems.append(str(exc))
        finally:
            if self.daemon is not None and self.daemon.alive():
                self.daemon.kill9()
            if self._engine is not None:
                self._engine.dispose()
            if self.paper is not None:
                code = self.paper.terminate()
                if code != 0:
                    self.result.problems.append(f"the paper exchange exited {code}\n{self.paper.tail()}")
        if self.db.exists() and self.paper_db.exists():
            self.result.verdict = check(self.db, self.paper_db, self.result.submitted)
        for point in KILL_POINTS:
            if self.result.kills[point] < self.spec.forced_per_point:
                self.result.problems.append(f"kill point {point} reached {self.result.kills[point]} times, "
                                            f"wanted {self.spec.forced_per_point}")
        self.result.wall_seconds = time.monotonic() - started
        return self.result

    def kill_all(self, started: float) -> None:
        plan, retries, reported = self.schedule(), Counter(), 0
        while plan:
            kind = plan.pop(0)
            self.top_up()
            if kind == "random":
                self.kill_randomly()
            elif not self.kill_at(kind) and retries[kind] < self.spec.forced_per_point * 3:
                retries[kind] += 1
                plan.insert(self.rng.randrange(len(plan) + 1), kind)  # try that kill point again later
            done = sum(self.result.kills.values())
            if self.verbose:
                self.echo(f"    {kind}: {time.monotonic() - started:.1f} s, kills {dict(self.result.kills)}")
            if done // 10 > reported:
                reported = done // 10
                self.echo(f"  {done} kills, {len(self.result.submitted)} parents submitted, "
                          f"{time.monotonic() - started:.0f} s")

    def fault_counts(self) -> dict[str, int]:
        conn = sqlite3.connect(readonly_uri(self.paper_db), uri=True, timeout=10)
        try:
            return dict(conn.execute("SELECT fault, COUNT(*) FROM requests WHERE fault IS NOT NULL GROUP BY fault"))
        finally:
            conn.close()


def run_chaos(workdir: Path, spec: ChaosSpec, echo: Callable[[str], None] = print,
              verbose: bool = False) -> ChaosResult:
    """The whole run in ``workdir`` (created; earlier chaos files there are removed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("daemon.db", "daemon.db-wal", "daemon.db-shm", "daemon.pid", "daemon.log", "paper.db",
                 "paper.db-wal", "paper.db-shm", "paper.db.credentials.json", "paper.log", "chaos.yaml"):
        (workdir / name).unlink(missing_ok=True)
    return _Run(workdir, spec, echo, verbose).run()
