"""Failover time: two daemons on one PostgreSQL database and the paper exchange, a 3 s lease;
the leader SIGKILLed while it works a TWAP; measured from the SIGKILL to the first
``OrderIntended`` committed by the new owner (polled every 20 ms). A fresh standby replaces
the killed daemon before the next trial."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from bench.postgres_bench import Unavailable, fresh_database
from genesis.chaos.ha import HaCluster
from genesis.chaos.procs import wait_until
from genesis.store import migrate

__all__ = ["Unavailable", "run"]


def run(trials: int = 10, lease_seconds: float = 3.0) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        url = next(stack.enter_context(contextlib.closing(fresh_database())))
        migrate.upgrade(url)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="genesis-failover-")))
        cluster = HaCluster(url, workdir, lease_seconds=lease_seconds)
        stack.callback(cluster.close)
        cluster.start_daemon()
        _, epoch = cluster.wait_leader()
        seconds = []
        for _ in range(trials):
            cluster.submit("5", "30m")  # a fresh TWAP each trial (30 s of wall time at 60x): slices to come
            standby = cluster.start_daemon()
            wait_until(lambda: "lease_standby" in standby.output(), 60, "the standby", [cluster.paper])
            leader, epoch = cluster.wait_leader(other_than=epoch - 1)
            at = cluster.last_sequence()
            wait_until(lambda: cluster.intents_after(at) > 0, 60, "the leader to send a slice", [cluster.paper])
            at = cluster.last_sequence()
            killed = time.monotonic()
            leader.kill9()
            wait_until(lambda: cluster.intents_after(at) > 0, 120, "the new owner's first slice", [cluster.paper],
                       every=0.02)
            seconds.append(time.monotonic() - killed)
            _, epoch = cluster.wait_leader(other_than=epoch)
        return {"trials": trials, "lease_seconds": lease_seconds, "seconds": seconds,
                "p50_seconds": statistics.median(seconds), "max_seconds": max(seconds)}


if __name__ == "__main__":
    print(run())
