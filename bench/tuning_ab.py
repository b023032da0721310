"""What each piece of the scheduling tuning (``genesis.tuning``) pays: the figures it is kept
for, with all of it on and with each piece off (``BENCH_TUNING_OFF``), each variant in a fresh
interpreter, variants interleaved over ``--rounds`` rounds (the machine drifts over minutes).

    python bench/tuning_ab.py [--rounds 2] [--parents 1000] [--store-rounds 3]

Per variant: event-loop lag p99 and per-child decision p99 (the engine bench's ``lag`` run:
``--parents`` parents at ``BENCH_LAG_SPEED``, 5x by default, the first 5 simulated minutes)
and the store's append ratio to raw sqlite3 (``store_bench``, ``--store-rounds`` rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("", "pacer", "slot", "gc", "switch", "all")


def one(parents: int, store_rounds: int) -> dict[str, float]:
    """In this interpreter: the lag run, then the store bench."""
    import asyncio

    from bench import engine_bench, store_bench
    from genesis.log import configure_logging

    configure_logging("error")
    with tempfile.TemporaryDirectory(prefix="genesis-bench-") as tmp:
        lag = asyncio.run(engine_bench.parents(
            Path(tmp) / "lag.db", parents, stop_after_minutes=engine_bench.LAG_MINUTES,
            speed=float(os.environ.get("BENCH_LAG_SPEED", engine_bench.LAG_SPEED))))
    store = store_bench.run(rounds=store_rounds)
    return {"loop_lag_p99_ms": lag["loop_lag_p99_ms"], "decision_p99_ms": lag["decision_p99_ms"],
            "store_ratio": store["ratio"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parents", type=int, default=1000)
    parser.add_argument("--store-rounds", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.parents, args.store_rounds)))
        return
    results: dict[str, list[dict[str, float]]] = {v or "none": [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            env = dict(os.environ, BENCH_TUNING_OFF=variant, PYTHONPATH=str(ROOT))
            out = subprocess.run([sys.executable, str(Path(__file__)), "--one", "--parents", str(args.parents),
                                  "--store-rounds", str(args.store_rounds)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            results[variant or "none"].append(figures)
            print(f"round {r + 1} off={variant or 'none':7} " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()),
                  f"load={os.getloadavg()[0]:.1f}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
