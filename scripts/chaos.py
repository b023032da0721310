"""``make chaos``: the long chaos run (docs/guarantees.md).

The daemon (``genesis run --venue ccxt:binance``) and the paper exchange (``genesis
paper-exchange``, fault injection on) as real processes; TWAP and VWAP parents at an
accelerated clock; the daemon SIGKILLed at random moments (50 times by default) and at each
forced kill point (after_intent, after_send, between_fills); restarted every time; then one
undisturbed run until every parent has ended, and the checks against both databases.

    python scripts/chaos.py                 # a fresh random seed (printed)
    python scripts/chaos.py --seed 1234     # the same schedule again
    python scripts/chaos.py --kills 10 --forced 1   # shorter

Prints one verdict line; exits 1 when a check failed. Files stay in ``--workdir``
(default ``chaos-run/``): daemon.db, paper.db, daemon.log, paper.log.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genesis.chaos.run import ChaosSpec, run_chaos  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="rerun a seed (default: a new random one)")
    parser.add_argument("--kills", type=int, default=50, help="random SIGKILLs of the daemon")
    parser.add_argument("--forced", type=int, default=4, help="SIGKILLs at each forced kill point")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second")
    parser.add_argument("--concurrency", type=int, default=3, help="parents live at once")
    parser.add_argument("--workdir", type=Path, default=ROOT / "chaos-run")
    parser.add_argument("--verbose", action="store_true", help="one line per restart")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"chaos: seed {seed} (rerun: python scripts/chaos.py --seed {seed}); files in {args.workdir}", flush=True)
    spec = ChaosSpec(seed=seed, random_kills=args.kills, forced_per_point=args.forced, speed=args.speed,
                     concurrency=args.concurrency)
    result = run_chaos(args.workdir, spec, echo=lambda line: print(line, flush=True), verbose=args.verbose)
    for failure in result.verdict.failures:
        print(f"  check failed: {failure}")
    for problem in result.problems:
        print(f"  run problem: {problem}")
    print(result.line(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
