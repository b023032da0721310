"""``make bench``: every figure side by side with its reference or target, as a ratio.

Writes bench/results.json. Timings are medians of several runs where a run is short; this
machine is shared and noisy, so compare ratios, not absolute numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import (api_bench, engine_bench, failover_bench, metrics_bench, parents_bench, postgres_bench,  # noqa: E402
                   store_bench, stream_weight_bench)
import genesis  # noqa: E402
from genesis.domain.volume_curve import VolumeCurveEstimator  # noqa: E402
from genesis.domain.vwap import plan_vwap  # noqa: E402
from genesis.log import configure_logging  # noqa: E402
from genesis.venue.candles import load_candles, shipped_candles  # noqa: E402
from genesis.venue.instruments import SIM_INSTRUMENTS  # noqa: E402


def median_seconds(fn, runs: int = 15) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def candle_load_ms() -> float:
    """Median time to load a shipped candle file (87,840 minutes, gzip CSV) from disk."""
    return median_seconds(lambda: load_candles(Path(genesis.__file__).parent / "data" / "BTC_USDT-1m.csv.gz"), runs=3) * 1e3


def curve_and_schedule() -> dict[str, float]:
    series = shipped_candles("BTC/USDT")
    times, volumes = series.open_times_ms(), series.volumes_float()
    as_of = datetime(2025, 7, 1, tzinfo=timezone.utc)
    estimator = VolumeCurveEstimator()
    curve_s = median_seconds(lambda: estimator.estimate(times, volumes, as_of))
    curve = estimator.estimate(times, volumes, as_of)
    btc = SIM_INSTRUMENTS["BTC/USDT"]
    plan_s = median_seconds(lambda: plan_vwap(Decimal("40"), as_of, as_of + timedelta(days=1), curve, btc,
                                              Decimal("107000"), 60))
    slices = len(plan_vwap(Decimal("40"), as_of, as_of + timedelta(days=1), curve, btc, Decimal("107000"), 60))
    return {"curve_ms": curve_s * 1e3, "schedule_ms": plan_s * 1e3, "schedule_slices": slices}


def curve_and_schedule_fresh(processes: int = 3) -> dict[str, float]:
    """``curve_and_schedule`` in ``processes`` fresh interpreters; the median of each figure.
    On this VM a process runs this Decimal-heavy code either at full speed or ~1.8x slower,
    for its whole life, whatever the code (1.33-1.43 ms vs 2.3-2.9 ms for the schedule, the
    same commit, alternate processes): one process is a coin toss, three are a majority."""
    import subprocess

    runs = [json.loads(subprocess.run([sys.executable, str(Path(__file__)), "--curve"], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(processes)]
    out = {k: statistics.median(r[k] for r in runs) for k in ("curve_ms", "schedule_ms")}
    return {**out, "schedule_slices": runs[0]["schedule_slices"],
            "runs": [{k: round(r[k], 3) for k in ("curve_ms", "schedule_ms")} for r in runs]}


def backtest_speed() -> dict[str, float]:
    from genesis.backtest import BacktestSpec, run_backtest

    path = ROOT / "genesis" / "data" / "BTC_USDT-1m.csv.gz"
    out = {}
    for algo in ("twap", "vwap"):
        spec = BacktestSpec(path, "BTC/USDT", "buy", "40", algo, datetime(2025, 7, 1, tzinfo=timezone.utc), 86_400)
        result = asyncio.run(run_backtest(spec))
        out[f"{algo}_wall_seconds"] = result["wall_seconds"]
        out[f"{algo}_sim_minutes_per_wall_second"] = 1440 / result["wall_seconds"]
    # the participation cap against traded volume: 40 BTC at critical urgency over 4 hours
    spec = BacktestSpec(path, "BTC/USDT", "buy", "40", "vwap", datetime(2025, 7, 1, tzinfo=timezone.utc), 14_400,
                        urgency="critical")
    result = asyncio.run(run_backtest(spec))
    out["critical_vwap_max_participation"] = float(result["max_participation"])
    out["critical_vwap_fill_ratio"] = float(result["filled_qty"]) / 40
    return out


FAILOVER_GOAL_SECONDS = 5.0  # leader SIGKILL to the new owner's first slice, with a 3 s lease


def row(name: str, value: float, unit: str, reference: float, ref_name: str, higher_is_better: bool,
        target_ratio: float = 1.0) -> dict:
    """``value`` against ``reference``; met when value/reference is at least (or, when lower
    is better, at most) ``target_ratio``."""
    ratio = value / reference if reference else float("nan")
    ok = ratio >= target_ratio if higher_is_better else ratio <= target_ratio
    return {"figure": name, "value": round(value, 3), "unit": unit, "reference": round(reference, 3),
            "reference_is": ref_name, "ratio": round(ratio, 3), "meets": ok}


def main() -> None:
    configure_logging("error")
    parents = int(os.environ.get("BENCH_PARENTS", "1000"))
    t0 = time.perf_counter()
    store = store_bench.run()
    try:
        postgres: dict | None = postgres_bench.run()
    except postgres_bench.Unavailable as exc:
        postgres = None
        print(f"skipped the PostgreSQL figures: {exc}", file=sys.stderr)
    try:
        failover: dict | None = failover_bench.run()
    except failover_bench.Unavailable as exc:
        failover = None
        print(f"skipped the failover figures: {exc}", file=sys.stderr)
    engine = engine_bench.run(parents)
    curve = curve_and_schedule_fresh()
    candle_ms = candle_load_ms()
    backtest = backtest_speed()
    metrics = metrics_bench.run()
    api = api_bench.run()
    weight = stream_weight_bench.run()
    account = parents_bench.run((300,))[0]  # N = 100 and 1,000 too: make bench-parents
    p, lag, rec = engine["parents"], engine["lag"], engine["recovery"]
    rows = [
        row("event store append (100 appenders, durable)", store["genesis_store"]["events_per_second"], "events/s",
            store["raw_sqlite3_batch100"]["events_per_second"], "raw sqlite3 event inserts, 100/commit; target ratio >= 0.5",
            True, target_ratio=0.5),
        row("  same, vs raw sqlite3 doing the store's SQL", store["genesis_store"]["events_per_second"], "events/s",
            store["raw_sqlite3_batch100_with_projection"]["events_per_second"],
            "raw inserts + projection updates, 100/commit (context)", True, target_ratio=0.5),
        *([] if postgres is None else [
            row("event store append on PostgreSQL (100 appenders, durable)",
                postgres["genesis_store"]["events_per_second"], "events/s",
                postgres["raw_psycopg_batch100"]["events_per_second"],
                "raw psycopg executemany, 100/commit; target ratio >= 0.5", True, target_ratio=0.5),
            row("  same, vs raw psycopg doing the store's SQL", postgres["genesis_store"]["events_per_second"],
                "events/s", postgres["raw_psycopg_batch100_with_projection"]["events_per_second"],
                "raw inserts + projection updates, 100/commit (context)", True, target_ratio=0.5),
            row("  same, as the daemon runs it (thread committer, lease fence in every commit)",
                postgres["genesis_store_fenced"]["events_per_second"], "events/s",
                postgres["raw_psycopg_batch100"]["events_per_second"], "raw psycopg, same round (context)", True,
                target_ratio=0.5),
            *([] if postgres["eventsourcing_recorder"] is None else [
                row("  same, vs the eventsourcing library's PostgreSQL recorder (100 threads, pool of 10)",
                    postgres["eventsourcing_recorder"]["store_events_per_second"], "events/s",
                    postgres["eventsourcing_recorder"]["events_per_second"],
                    "eventsourcing PostgresApplicationRecorder, same events, first round (context)", True)]),
            row(f"restart recovery of {postgres['recovery']['executions']} executions from PostgreSQL",
                postgres["recovery"]["seconds"], "s", 2.0, "target < 2 s", False)]),
        *([] if failover is None else [
            row(f"failover, leader SIGKILL to the new owner's first slice, p50 ({failover['trials']} trials, "
                f"{failover['lease_seconds']:g} s lease)", failover["p50_seconds"], "s",
                FAILOVER_GOAL_SECONDS, "goal: under 5 s with a 3 s lease", False),
            row("  same, max", failover["max_seconds"], "s", FAILOVER_GOAL_SECONDS, "goal", False)]),
        row(f"per-child decision p50 ({parents} parents, {lag['speed']:g}x live load)", lag["decision_p50_ms"], "ms",
            1.0, "target p99 < 1 ms", False),
        row(f"per-child decision p99 ({parents} parents, {lag['speed']:g}x live load)", lag["decision_p99_ms"], "ms",
            1.0, "target < 1 ms", False),
        row(f"  same, at {p['speed']:g}x (near saturation)", p["decision_p99_ms"], "ms", 1.0, "context", False),
        row(f"event-loop lag p99 ({parents} parents, {lag['speed']:g}x live load)", lag["loop_lag_p99_ms"], "ms", 5.0,
            "target < 5 ms", False),
        row(f"  same, at {p['speed']:g}x (near saturation)", p["loop_lag_p99_ms"], "ms", 5.0, "context", False),
        row("resident memory per active parent", p["rss_per_parent_kib"], "KiB", 1024.0, "target < 1 MiB", False),
        row(f"restart recovery of {rec['executions']} executions", rec["seconds"], "s", 2.0, "target < 2 s", False),
        row("shipped candle file load (87,840 minutes)", candle_ms, "ms", 1000.0, "target < 1 s", False),
        row("volume curve, 20 days of 1-minute candles", curve["curve_ms"], "ms", 5.0, "target < 5 ms", False),
        row(f"{curve['schedule_slices']}-slice VWAP schedule", curve["schedule_ms"], "ms", 2.0, "target < 2 ms", False),
        row("backtest, full day TWAP", backtest["twap_sim_minutes_per_wall_second"], "sim min/s",
            1440 / 5.0, "a day in 5 s", True),
        row("backtest, full day VWAP", backtest["vwap_sim_minutes_per_wall_second"], "sim min/s",
            1440 / 5.0, "a day in 5 s", True),
        row("critical VWAP backtest (40 BTC, 4 h): max realised participation",
            backtest["critical_vwap_max_participation"], "share", 0.10,
            "goal <= 10% (+ one lot step) of the volume traded in each slice's interval", False,
            target_ratio=1.001),
        row(f"/metrics scrape (store read + render), {metrics['executions']:,} executions", metrics["scrape_ms"],
            "ms", 10.0, "target < 10 ms", False),
        row("  of which render", metrics["render_ms"], "ms", 10.0, "context", False),
        row(f"API submit-to-accepted p50 ({api['clients']} concurrent clients)", api["accepted_p50_ms"], "ms",
            1000.0, "target p99 < 1 s", False),
        row(f"API submit-to-accepted p99 ({api['clients']} concurrent clients)", api["accepted_p99_ms"], "ms",
            1000.0, "target < 1 s", False),
        row("  same, POST answered (durably queued) p99", api["queued_p99_ms"], "ms", 1000.0, "context", False),
        row(f"request weight per slice, streams ({weight['streams']['slices']} TWAP slices, paper exchange)",
            weight["streams"]["weight_per_slice"], "weight", 4.0, "target <= 4", False),
        row("  same, REST only (CcxtVenue)", weight["rest"]["weight_per_slice"], "weight", 4.0, "context", False),
        row(f"{account['parents']} TWAP parents on one account (paper exchange, --speed 5): slice lateness p99, "
            "scheduled to first order received", account["slice_lateness_p99_s"], "s", 2.0, "goal < 2 s", False),
        row("  same, p50", account["slice_lateness_p50_s"], "s", 2.0, "context", False),
        row("  same, HTTP 429/418 received", account["http_429_or_418"], "responses", 1.0, "goal 0", False,
            target_ratio=0.0),
        row("  same, request weight in the busiest exchange minute", account["weight_peak_minute_share"],
            "share", 1.0, "of 6,000 a minute", False),
        row("  same, max realised participation of a slice on the exchange's tape",
            account["max_slice_participation"], "share", 0.10, "goal <= 10% (+ one lot step)", False,
            target_ratio=1.001),
    ]
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
               "load_average": os.getloadavg(), "when": datetime.now(timezone.utc).isoformat()}
    results = {"machine": machine, "rows": rows, "store": store, "postgres": postgres, "failover": failover, "engine": engine, "curve": curve,
               "backtest": backtest, "metrics": metrics, "api": api, "request_weight": weight, "parents_on_one_account": account, "bench_seconds": time.perf_counter() - t0}
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"genesis bench ({machine['cpus']} cpus, load {machine['load_average'][0]:.1f})")
    for col in ("figure", "value", "unit", "reference", "reference is", "ratio", "meets"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["figure"], f"{r['value']:,}", r["unit"], f"{r['reference']:,}", r["reference_is"],
                      f"{r['ratio']}", "yes" if r["meets"] else "NO")
    Console(width=170).print(table)
    print(f"wrote {out}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--curve"]:
        print(json.dumps(curve_and_schedule()))
    else:
        main()
