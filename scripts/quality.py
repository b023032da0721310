#!/usr/bin/env python3
"""``make quality``: VWAP vs TWAP tracking of the market VWAP on the shared candles, with POV
(realised participation against its target) and IS (shortfall against arrival) beside them.

For each pair and each out-of-sample UTC day with ``--history-days`` full days of candles
before it, buy a fixed quantity over each 4-hour window of the day (00, 04, ... 20 UTC) and
over the whole day, once per algorithm (``--algos``; same seed), through
``genesis.backtest.run_backtest`` (the real runner, risk, events and store on a virtual clock).
Every execution is one CSV row (``bench/quality.csv``); the summary tables are written into
``docs/execution-quality.md`` between the ``quality:begin`` / ``quality:end`` markers.

Days are split for honesty: the *dev* days (every 5th day, offset 2: 8 of 41) were used to
iterate on the design; the summary also reports the other days (*held out*) separately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import math
import multiprocessing as mp
import os
import re
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genesis.backtest import BacktestSpec, run_backtest
from genesis.config import RuntimeConfig, parse_config
from genesis.log import configure_logging
from genesis.venue.candles import CandleSeries, load_candles
from scripts.quality_algorithms import pov_table, shortfall_table

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "market" / "binance_spot_1m"
# ~2% of the median market volume of the window (61 days of data: BTC 4h median 2,149 BTC, day
# 14,923 BTC; ETH 4h 76,096 ETH, day 504,944 ETH): a realistic institutional size, well under
# the 10% participation cap in a normal window.
SIZES = {"BTC/USDT": {"4h": "40", "24h": "300"}, "ETH/USDT": {"4h": "1500", "24h": "10000"}}
WINDOWS = {"4h": 4 * 3600, "24h": 86_400}
ALGOS = ("twap", "vwap", "pov", "is")
FIELDS = ["pair", "day", "subset", "window", "start", "algo", "qty", "filled_qty", "fill_rate", "state",
          "avg_price", "market_vwap", "slippage_vs_vwap_bps", "implementation_shortfall_bps", "maker_ratio",
          "max_participation", "realised_participation", "target_participation", "participation_bounds",
          "slices", "fees", "wall_seconds"]
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"

_series: dict[str, CandleSeries] = {}  # per worker process: each candle file is parsed once


def data_file(data_dir: Path, pair: str) -> Path:
    found = sorted(data_dir.glob(pair.replace("/", "_") + "-1m*.csv*"))
    if not found:
        raise SystemExit(f"no candle file for {pair} in {data_dir} (pass --data-dir)")
    return found[-1]


def out_of_sample_days(series: CandleSeries, history_days: int) -> list[datetime]:
    first = series.first_open_time
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if day < first:
        day += timedelta(days=1)
    day += timedelta(days=history_days)
    days = []
    while day + timedelta(days=1) <= series.end_time:
        days.append(day)
        day += timedelta(days=1)
    return days


def subset_of(index: int) -> str:
    return "dev" if index % 5 == 2 else "held_out"


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    path = Path(job["path"])
    if job["pair"] not in _series:
        _series[job["pair"]] = load_candles(path, job["pair"])
    config = parse_config(job["config"], "quality config")
    pov = job["algo"] == "pov"
    options = {"participation": job["pov"][0], "min_participation": job["pov"][1]} if pov else {}
    spec = BacktestSpec(path, job["pair"], "buy", job["qty"], job["algo"], datetime.fromisoformat(job["start"]),
                        WINDOWS[job["window"]], history_days=job["history_days"], seed=job["seed"],
                        urgency=job["is_urgency"] if job["algo"] == "is" else "low", options=options)
    r = asyncio.run(run_backtest(spec, config=config, series=_series[job["pair"]]))
    target = float(job["pov"][0])
    filled, qty = float(r["filled_qty"]), float(r["qty"])
    return {"pair": job["pair"], "day": job["day"], "subset": job["subset"], "window": job["window"],
            "start": job["start"], "algo": job["algo"], "qty": r["qty"], "filled_qty": r["filled_qty"],
            "fill_rate": f"{filled / qty:.6f}", "state": r["state"], "avg_price": r["avg_price"],
            "market_vwap": r["market_vwap"], "slippage_vs_vwap_bps": r["slippage_vs_vwap_bps"],
            "implementation_shortfall_bps": r["implementation_shortfall_bps"], "maker_ratio": r["maker_ratio"],
            "max_participation": r["max_participation"], "realised_participation": r["realised_participation"],
            "target_participation": job["pov"][0] if pov else "",
            "participation_bounds": f"{job['pov'][1]}-{min(1.0, 2 * target):g}" if pov else "",  # POV's default max
            "slices": r["slices"], "fees": r["fees"],
            "wall_seconds": r["wall_seconds"]}


def _init_worker() -> None:
    configure_logging("error")


def build_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = _config_overrides(args.set)
    jobs = []
    for pair in args.pairs:
        path = data_file(args.data_dir, pair)
        days = out_of_sample_days(load_candles(path, pair), args.history_days)
        for i, day in enumerate(days):
            subset = subset_of(i)
            if args.days == "dev" and subset != "dev" or args.days == "held_out" and subset != "held_out":
                continue
            if args.every > 1 and i % args.every:
                continue
            for window in args.windows:
                starts = [day + timedelta(hours=h) for h in range(0, 24, 4)] if window == "4h" else [day]
                for start in starts[:args.max_starts]:
                    for algo in args.algos:
                        jobs.append({"path": str(path), "pair": pair, "day": day.date().isoformat(), "subset": subset,
                                     "window": window, "start": start.isoformat(), "algo": algo,
                                     "qty": args.size.get((pair, window), SIZES[pair][window]),
                                     "history_days": args.history_days, "seed": args.seed, "config": config,
                                     "pov": (args.pov_participation, args.pov_min_participation),
                                     "is_urgency": args.is_urgency})
    jobs.sort(key=lambda j: -WINDOWS[j["window"]])  # longest first: the two workers finish together
    return jobs


def _config_overrides(items: list[str]) -> dict[str, Any]:
    """The default config, parent notional limit lifted (the 24-hour sizes are 25-35M USDT), with
    ``--set vwap.behind_tolerance=0.01``-style overrides applied."""
    data = RuntimeConfig().model_dump(mode="json")
    data["risk"]["max_parent_notional_usdt"] = "1000000000"
    for item in items:
        key, _, value = item.partition("=")
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = {"true": True, "false": False}.get(value.lower(), value)
    parse_config(data, "--set")  # fail early, in the parent, with the key named
    return data


def run(jobs: list[dict[str, Any]], workers: int, csv_path: Path) -> list[dict[str, Any]]:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with csv_path.open("w", newline="") as fh, contextlib.ExitStack() as stack:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        if workers > 1:
            results = stack.enter_context(mp.get_context("fork").Pool(workers, _init_worker)).imap_unordered(_run_one, jobs)
        else:  # in-process (tests, debugging)
            _init_worker()
            results = map(_run_one, jobs)
        for n, row in enumerate(results, 1):
            rows.append(row)
            writer.writerow(row)
            fh.flush()
            if n % max(1, len(jobs) // 50) == 0 or n == len(jobs):
                elapsed = time.perf_counter() - t0
                print(f"[{n}/{len(jobs)}] {elapsed:6.0f}s elapsed, ~{elapsed / n * (len(jobs) - n):5.0f}s left  "
                      f"(last: {row['pair']} {row['start']} {row['window']} {row['algo']} "
                      f"{row['slippage_vs_vwap_bps']} bps, {row['wall_seconds']}s)", flush=True)
    return rows


def read_rows(csv_path: Path) -> list[dict[str, Any]]:
    with csv_path.open() as fh:
        return list(csv.DictReader(fh))


def summarise(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["pair"], r["window"], r["algo"])].append(r)
    out = {}
    for key, rs in groups.items():
        slip = [float(r["slippage_vs_vwap_bps"]) for r in rs if r["slippage_vs_vwap_bps"]]
        maker = [float(r["maker_ratio"]) for r in rs if r["maker_ratio"]]
        isb = [float(r["implementation_shortfall_bps"]) for r in rs if r["implementation_shortfall_bps"]]
        out[key] = {"n": len(rs), "mean_abs": _mean([abs(x) for x in slip]),
                    "rms": math.sqrt(_mean([x * x for x in slip])), "bias": _mean(slip), "is": _mean(isb),
                    "maker": _mean(maker),
                    "fill": sum(float(r["filled_qty"]) for r in rs) / sum(float(r["qty"]) for r in rs),
                    "short": sum(1 for r in rs if float(r["fill_rate"]) < 1),
                    "min_fill": min(float(r["fill_rate"]) for r in rs),
                    "wall": _mean([float(r["wall_seconds"]) for r in rs])}
    return out


def paired(rows: list[dict[str, Any]], pair: str, window: str) -> tuple[int, float, float, float]:
    """(n, mean of |twap| - |vwap|, its standard error, share of executions where vwap is closer)."""
    by: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["pair"] == pair and r["window"] == window and r["slippage_vs_vwap_bps"]:
            by[(r["start"], r["pair"])][r["algo"]] = abs(float(r["slippage_vs_vwap_bps"]))
    d = [v["twap"] - v["vwap"] for v in by.values() if "twap" in v and "vwap" in v]
    if len(d) < 2:
        return len(d), _mean(d), float("nan"), float("nan")
    m = _mean(d)
    se = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))
    return len(d), m, se, sum(1 for x in d if x > 0) / len(d)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def tables(rows: list[dict[str, Any]]) -> str:
    s = summarise(rows)
    keys = sorted({(p, w) for p, w, _ in s}, key=lambda k: (k[0], WINDOWS[k[1]]))
    lines = [("| algo | pair | window | size | N | mean abs. vs VWAP (bps) | RMS (bps) | mean signed (bps) "
              "| mean IS (bps) | maker ratio | fill rate | short fills | mean wall (s) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for pair, window in keys:
        for algo in ALGOS:
            g = s.get((pair, window, algo))
            if g is None:
                continue
            size = next(r["qty"] for r in rows if r["pair"] == pair and r["window"] == window)
            lines.append(f"| {algo} | {pair} | {window} | {size} | {g['n']} | {g['mean_abs']:.2f} | {g['rms']:.2f} | "
                         f"{g['bias']:+.2f} | {g['is']:+.2f} | {g['maker']:.3f} | {g['fill'] * 100:.3f}% | "
                         f"{g['short']} (min {g['min_fill'] * 100:.1f}%) | {g['wall']:.2f} |")
    lines += ["", "VWAP vs TWAP, paired by window (same start, same seed): how much closer to the market VWAP.", "",
              ("| pair | window | mean abs.: TWAP -> VWAP | RMS: TWAP -> VWAP | paired mean gain (bps, +- 1 s.e.) "
               "| VWAP closer in |"), "|---|---|---|---|---|---|"]
    for pair, window in keys:
        t, v = s.get((pair, window, "twap")), s.get((pair, window, "vwap"))
        if t is None or v is None:
            continue
        n, m, se, share = paired(rows, pair, window)
        lines.append(f"| {pair} | {window} | {t['mean_abs']:.2f} -> {v['mean_abs']:.2f} "
                     f"({(1 - v['mean_abs'] / t['mean_abs']) * 100:+.0f}% less) | {t['rms']:.2f} -> {v['rms']:.2f} "
                     f"({(1 - v['rms'] / t['rms']) * 100:+.0f}% less) | {m:+.2f} +- {se:.2f} | "
                     f"{share * 100:.0f}% of {n} |")
    lines += pov_table(rows, WINDOWS) + shortfall_table(rows, WINDOWS)
    return "\n".join(lines)


def report(rows: list[dict[str, Any]], doc: Path, header: str) -> str:
    parts = [header, "", "**All days**", "", tables(rows)]
    for subset, title in (("dev", "Development days only (used while iterating)"),
                          ("held_out", "Held-out days only (never looked at while iterating)")):
        sub = [r for r in rows if r["subset"] == subset]
        if sub and len(sub) < len(rows):
            parts += ["", f"**{title}**", "", tables(sub)]
    text = "\n".join(parts)
    if doc.exists():
        old = doc.read_text()
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
        if pattern.search(old):
            doc.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", old))
            return text
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(f"# Execution quality\n\n{BEGIN}\n{text}\n{END}\n")
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--pairs", nargs="+", default=list(SIZES))
    p.add_argument("--windows", nargs="+", default=list(WINDOWS), choices=list(WINDOWS))
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    p.add_argument("--days", choices=["all", "dev", "held_out"], default="all")
    p.add_argument("--every", type=int, default=1, help="only every Nth day (a documented systematic subset)")
    p.add_argument("--max-starts", type=int, default=6, help="4-hour windows per day (from 00 UTC)")
    p.add_argument("--size", nargs=3, action="append", metavar=("PAIR", "WINDOW", "QTY"), default=[],
                   help="override a size, e.g. --size BTC/USDT 4h 20")
    p.add_argument("--pov-participation", default="0.03", help="POV's target share of the traded volume")
    p.add_argument("--pov-min-participation", default="0.01")
    p.add_argument("--is-urgency", default="medium", choices=["low", "medium", "high", "critical"])
    p.add_argument("--history-days", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set vwap.behind_tolerance=0.02")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "quality.csv")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "execution-quality.md")
    p.add_argument("--no-doc", action="store_true", help="print the tables, do not touch the doc")
    p.add_argument("--report-only", action="store_true", help="re-render the tables from --csv")
    args = p.parse_args(argv)
    args.size = {(pair, window): qty for pair, window, qty in args.size}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if args.report_only:
        rows, wall = read_rows(args.csv), None
    else:
        jobs = build_jobs(args)
        print(f"{len(jobs)} executions on {args.workers} worker(s); results -> {args.csv}", flush=True)
        rows = run(jobs, args.workers, args.csv)
        wall = time.perf_counter() - t0
    cmd = "python scripts/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"Generated by `{cmd.strip()}`" + (f" in {wall / 60:.1f} min wall time on {args.workers} worker(s), "
              f"{os.cpu_count()} CPU core(s)" if wall is not None else "") +
              f"; {len(rows)} executions; per-execution rows in `{args.csv.name}`.")
    if args.no_doc:
        print(header + "\n\n" + tables(rows))
    else:
        print(report(rows, args.doc, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
