"""``make chaos-ha``: leader faults with several daemons on one PostgreSQL database (docs/ha.md).

Three ``genesis run --venue ccxt:binance`` daemons (one account: a leader and two standbys,
3 s lease) and the paper exchange at 60x; TWAPs kept running; ``--faults`` times (30 by
default) the current leader is either SIGKILLed (and replaced by a fresh daemon) or
SIGSTOPped past its lease and then continued (it must find its lease lost and stand by);
each time the next fault waits for a new leader at a higher epoch. Then the executions run to
their end, every daemon gets SIGTERM, and the verdict is read from the exchange's records
and the event log (``genesis.chaos.ha.HaCluster.verdict``).

    python scripts/chaos_ha.py --seed 7 --faults 30

Needs PostgreSQL at ``$GENESIS_BENCH_PG`` (default the local server, user postgres); a fresh
database is created and dropped. Prints one verdict line; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres_bench import fresh_database  # noqa: E402
from genesis.chaos.ha import HaCluster  # noqa: E402
from genesis.chaos.procs import ChaosError, wait_until  # noqa: E402
from genesis.store import migrate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", type=int, default=30)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--lease-seconds", type=float, default=3.0)
    parser.add_argument("--pg-restarts", type=int, default=1,
                        help="restarts of the PostgreSQL server among the faults (the server is shared: keep it low)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "chaos-ha-run")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    args.workdir.mkdir(parents=True, exist_ok=True)
    for old in args.workdir.glob("*"):
        old.unlink()
    print(f"chaos-ha: seed {seed}, {args.faults} faults ({args.pg_restarts} of them PostgreSQL restarts), "
          f"{args.daemons} daemons, {args.lease_seconds:g} s lease")
    kills = pauses = pg_restarts = 0
    restart_at = set(rng.sample(range(1, max(args.faults, 2)), min(args.pg_restarts, max(args.faults - 1, 1))))
    with contextlib.closing(fresh_database()) as databases:
        url = next(databases)
        migrate.upgrade(url)
        cluster = HaCluster(url, args.workdir, lease_seconds=args.lease_seconds)
        try:
            for _ in range(args.daemons):
                cluster.start_daemon()
            _, epoch = cluster.wait_leader()
            for n in range(args.faults):
                if cluster.live_executions() < 2:
                    cluster.submit(f"{rng.choice(('0.8', '1.5', '2.3'))}", rng.choice(("20m", "30m")))
                leader, epoch = cluster.wait_leader(other_than=epoch - 1)
                time.sleep(rng.uniform(0.3, 2.0))  # mid-execution, at a random moment
                if n in restart_at:
                    kind = "PostgreSQL restarted"
                    print(f"  fault {n + 1}: restarting PostgreSQL (pg_ctlcluster ... main restart) "
                          "with parents running", flush=True)
                    before = cluster.last_sequence()
                    seconds = cluster.restart_postgres()
                    kind += f" ({seconds:.1f} s)"
                    pg_restarts += 1
                    _, epoch = cluster.wait_leader(other_than=epoch - 1)  # the leader may keep its lease
                    if cluster.live_executions():  # and works on: a new order intended after the restart
                        wait_until(lambda: cluster.intents_after(before) > 0, 90, "an order intended after the "
                                   "PostgreSQL restart", [cluster.paper])
                    print(f"  fault {n + 1}: {kind} -> leader at epoch {epoch}", flush=True)
                    continue
                if rng.random() < 0.5:
                    kind = "SIGKILL"
                    leader.kill9()
                    cluster.start_daemon()
                    kills += 1
                else:
                    kind = "SIGSTOP past the lease, SIGCONT"
                    cluster.pause(leader, args.lease_seconds * rng.uniform(1.5, 2.5) + 1.5)
                    pauses += 1
                _, epoch = cluster.wait_leader(other_than=epoch)
                print(f"  fault {n + 1}: {kind} -> new leader at epoch {epoch}", flush=True)
            wait_until(lambda: cluster.live_executions() == 0, 300, "every execution to end", [cluster.paper])
            for proc in cluster.daemons.values():
                if proc.alive():
                    proc.terminate()
            verdict = cluster.verdict()
            verdict.counts.update(kills=kills, pauses=pauses, pg_restarts=pg_restarts, last_epoch=epoch,
                                  executions=cluster.rows("SELECT count(*) FROM executions")[0][0],
                                  intents=cluster.rows("SELECT count(*) FROM events "
                                                               "WHERE event_type = 'OrderIntended'")[0][0])
        except ChaosError as exc:
            print(f"chaos-ha: {exc}")
            return 1
        finally:
            cluster.close()
    print(verdict.line({"seed": seed}).replace("chaos verdict", "chaos-ha verdict"))
    for failure in verdict.failures:
        print("  " + failure)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
