"""Parents one Binance account carries: N TWAP parents (5-minute windows, one slice a minute) on
the paper exchange at ``--speed 5``, its Binance limits enforced, the exchange in its own process.

The engine (``build_supervisor`` over ``StreamingCcxtVenue``, or ``CcxtVenue`` with ``--rest``)
runs in this process on the exchange's clock (``exchange_clock``); the paper exchange is
``python -m genesis.paper`` in a child process. Figures (``bench/slice_figures.py``): slice
lateness (scheduled to the first child order received, maker wait excluded), 429/418 received,
request weight per exchange minute as a share of 6,000, realised participation on the
exchange's tape; CPU seconds per wall second of each process and the load average.

Parents arrive evenly over the first exchange minute (``--arrivals SECONDS``; 0: a basket, all
at once, whose slices then all fall due together each minute).

``python -m bench.parents_bench [N ...] [--rest] [--arrivals S] [--speed X] [--no-pacing] [--profile DIR]``: ``--profile`` runs both
processes under cProfile and writes ``DIR/engine-N.txt`` and ``DIR/exchange-N.txt`` (slower:
use it to find the bottleneck, not for the figures).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.slice_figures import Tape, lateness, participation, past_cap_room, pct, weight_by_minute
from genesis.config import parse_config
from genesis.paper.clock import exchange_clock
from genesis.paper.local import free_port, get_json
from genesis.requests import validate_submit
from genesis.runtime.wiring import EngineOptions, build_engine
from genesis.tuning import DEFAULT_TUNING, Tuning
from genesis.store import migrate
from genesis.store import tables as t
from genesis.venue.candles import shipped_candles
from genesis.venue.ccxt_stream import StreamingCcxtVenue
from genesis.venue.ccxt_venue import CcxtVenue
from genesis.venue.credentials import Credentials
from genesis.venue.instruments import SIM_INSTRUMENTS

KEY, SECRET = "parents-bench-key-01", "parents-bench-secret-01"
SPEED = 5.0
SYMBOL = "BTC/USDT"
MINUTES, SLICES, QTY = 5, 5, "0.05"
START_OFFSET = timedelta(days=20, hours=13)
ARRIVAL_SECONDS = 60.0  # parents arrive evenly over the first exchange minute


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _run_delay_seconds(pid: int) -> float:
    """Seconds the process's main thread waited for a CPU (runnable, not running)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _top(profile: pstats.Stats | cProfile.Profile, path: Path) -> None:
    out = io.StringIO()
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile, stream=out)
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    path.write_text(out.getvalue())


def start_exchange(tmp: Path, speed: float, start: datetime, profile: Path | None) -> tuple[subprocess.Popen[bytes], str]:
    """``genesis paper-exchange`` in a child process; its URL once it answers."""
    port, secret_file = free_port(), tmp / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen([sys.executable, *prefix, "-m", "genesis.paper", "--port", str(port),
                             "--state", str(tmp / "paper.db"), "--speed", str(speed),
                             "--start", start.isoformat(), "--key", KEY, "--secret-file", str(secret_file)],
                            stdout=subprocess.DEVNULL, stderr=(tmp / "exchange.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            break
        try:
            get_json(url + "/admin/clock", timeout=1.0)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the paper exchange did not start: {(tmp / 'exchange.log').read_text()[-2000:]}")


async def run_parents(parents: int, streams: bool = True, speed: float = SPEED,
                      profile_dir: Path | None = None,
                      spread_seconds: float = ARRIVAL_SECONDS, tuning: Tuning = DEFAULT_TUNING) -> dict[str, Any]:
    """One run of ``parents`` TWAPs (module docstring), submitted evenly over
    ``spread_seconds`` exchange seconds (0: all at once, a basket); the figures as a dict."""
    start = shipped_candles(SYMBOL).first_open_time + START_OFFSET
    config = parse_config({})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ex_profile = profile_dir / f"exchange-{parents}.prof" if profile_dir else None
        proc, url = start_exchange(tmp, speed, start, ex_profile)
        engine_profile = cProfile.Profile() if profile_dir else None
        try:
            clock = await exchange_clock(url)
            kind = StreamingCcxtVenue if streams else CcxtVenue
            venue = kind("binance", credentials=Credentials(KEY, SECRET), exchange_url=url,
                         clock=clock, time_scale=speed)
            db = tmp / "genesis.db"
            migrate.upgrade(db)
            engine = await build_engine(db, config, clock, lambda _clock: venue,
                                        lambda v: v.instruments(), EngineOptions(candle_cache=False, tuning=tuning))
            supervisor = engine.supervisor
            commits: list[float] = []  # wall seconds from an append's request to its commit
            engine.store.observe_commits(lambda seconds, _ok: commits.append(seconds))
            load_before, cpu_ex, cpu_me = _loadavg(), _cpu_seconds(proc.pid), time.process_time()
            waited_ex, waited_me = _run_delay_seconds(proc.pid), _run_delay_seconds(os.getpid())
            budget_waited = venue.budget.waited_seconds  # the account's budget outlives a run
            t0, sim0 = time.perf_counter(), clock.now()
            if engine_profile:
                engine_profile.enable()
            try:
                for i in range(parents):
                    await clock.sleep_until(sim0 + timedelta(seconds=spread_seconds * i / parents))
                    await supervisor.submit(validate_submit(
                        symbol=SYMBOL, side="buy" if i % 2 else "sell", qty=QTY, algo="twap",
                        duration=f"{MINUTES}m", slices=SLICES, limit_price=None, request_id=None,
                        instruments=SIM_INSTRUMENTS, config=config))
                submitted_sim_s = (clock.now() - sim0).total_seconds()
                await supervisor.wait_all()
            finally:
                if engine_profile:
                    engine_profile.disable()
            wall = time.perf_counter() - t0
            cpu = {"engine_cpu_per_wall_s": round((time.process_time() - cpu_me) / wall, 3),
                   "exchange_cpu_per_wall_s": round((_cpu_seconds(proc.pid) - cpu_ex) / wall, 3),
                   # runnable but waiting for one of the machine's CPUs, per wall second
                   "engine_cpu_wait_per_wall_s": round((_run_delay_seconds(os.getpid()) - waited_me) / wall, 3),
                   "exchange_cpu_wait_per_wall_s": round((_run_delay_seconds(proc.pid) - waited_ex) / wall, 3)}
            load_after = _loadavg()
            waits = {"commit_p50_wall_ms": pct([1000 * c for c in commits], 0.5),
                     "commit_p99_wall_ms": pct([1000 * c for c in commits], 0.99),
                     "order_budget_wait_seconds_total": round(venue.budget.waited_seconds - budget_waited, 1),
                     "pacer_queued_turns": supervisor.pacer.queued_turns}
            async with engine.database.connect() as conn:
                s, c = t.execution_slices.c, t.child_orders.c
                slices = (await conn.execute(select(s.execution_id, s.slice_index, s.scheduled_at,
                                                    s.interval_start, s.interval_end,
                                                    s.cap_overridden))).all()
                children = (await conn.execute(select(c.client_order_id, c.execution_id,
                                                      c.slice_index, c.intended_at))).all()
                sizes = (await conn.execute(select(c.client_order_id, c.execution_id, c.slice_index,
                                                   c.qty))).all()
            await engine.close()
        finally:
            proc.terminate()
            proc.wait(30)
        if os.environ.get("PARENTS_BENCH_KEEP"):  # the two databases, for a closer look
            import shutil
            for name in ("paper.db", "genesis.db", "exchange.log"):
                shutil.copy(tmp / name, Path(os.environ["PARENTS_BENCH_KEEP"]) / f"{parents}-{name}")
        exchange = sqlite3.connect(tmp / "paper.db")
        received = dict(exchange.execute("SELECT client_order_id, created_ms FROM orders"))
        requests = list(exchange.execute("SELECT sim_ms, method, path, http_status FROM requests"))
        orders_sent = len(received)
        figures = {
            "parents": parents, "streams": streams, "speed": speed, "slices": len(slices),
            "arrivals_over_sim_seconds": spread_seconds, "loop_budget_seconds": tuning.loop_budget_seconds,
            "child_orders_received": orders_sent, "wall_seconds": round(wall, 1),
            "submission_burst_sim_seconds": round(submitted_sim_s, 1),
            **lateness([(r[0], r[1], r[2]) for r in slices], children, received),
            **past_cap_room(Tape(SYMBOL), config.twap.participation_cap,
                            [(r[0], r[1], r[2], r[3]) for r in slices], sizes, received),
            **weight_by_minute(requests),
            **participation(Tape(SYMBOL), [(r[0], r[1], r[3], r[4], r[5]) for r in slices],
                            children, exchange),
            **cpu, **waits,
            # exchange seconds an order waited for the account's order budget, on average (the
            # budget counts its waits on its clock, the exchange's)
            "order_budget_wait_per_order_s": round(
                waits["order_budget_wait_seconds_total"] / max(1, orders_sent), 2),
            "loadavg_before": load_before, "loadavg_after": load_after}
        exchange.close()
        if profile_dir:
            _top(engine_profile, profile_dir / f"engine-{parents}.txt")  # type: ignore[arg-type]
            _top(pstats.Stats(str(ex_profile)), profile_dir / f"exchange-{parents}.txt")
        return figures


def run(counts: tuple[int, ...] = (100, 300), streams: bool = True, profile_dir: Path | None = None,
        spread_seconds: float = ARRIVAL_SECONDS) -> list[dict[str, Any]]:
    """One run per parent count, one after the other."""
    return [asyncio.run(run_parents(n, streams, SPEED, profile_dir, spread_seconds)) for n in counts]


if __name__ == "__main__":
    from genesis.log import configure_logging

    configure_logging("error")
    args = sys.argv[1:]
    profile = Path(args.pop(args.index("--profile") + 1)) if "--profile" in args else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    spread = float(args.pop(args.index("--arrivals") + 1)) if "--arrivals" in args else ARRIVAL_SECONDS
    speed = float(args.pop(args.index("--speed") + 1)) if "--speed" in args else SPEED
    counts = tuple(int(a) for a in args if a.isdigit()) or (100, 300)
    tuning = replace(DEFAULT_TUNING, loop_budget_seconds=0) if "--no-pacing" in args else DEFAULT_TUNING
    print(json.dumps([asyncio.run(run_parents(n, "--rest" not in args, speed, profile, spread, tuning))
                      for n in counts],
                     indent=2, default=str))
