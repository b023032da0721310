"""A short chaos run in the suite (``make chaos`` runs the long one): the daemon and the paper
exchange as real processes through the ccxt client, exchange faults on, the daemon SIGKILLed
at random moments and once at each forced kill point (after_intent, after_send,
between_fills), restarted each time, then drained; the verdict is checked against both
databases (``genesis.chaos.verdict``). The same files, doctored, show each check can fail."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from genesis.chaos.run import ChaosResult, ChaosSpec, run_chaos
from genesis.chaos.verdict import check
from genesis.engine.killpoints import KILL_POINTS

pytestmark = pytest.mark.slow

# Fast clock, short windows; maker orders rest 2 simulated minutes, so a random kill usually
# leaves one open and the next restart (armed with a kill point) has fills to reconcile.
SPEC = ChaosSpec(seed=7, random_kills=2, forced_per_point=1, concurrency=2, speed=240.0,
                 durations_seconds=(300, 360), max_uptime_seconds=2.0, early_kill_share=0.0,
                 faults="p_5xx=0.1,p_timeout_after_accept=0.03,p_429=0.05,p_drop_response=0.05",
                 kill_point_timeout_seconds=12.0, drain_timeout_seconds=60.0, maker_timeout_seconds=120.0)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> ChaosResult:
    return run_chaos(tmp_path_factory.mktemp("chaos"), SPEC, echo=lambda _line: None)


def test_short_chaos_run_keeps_every_guarantee(chaos: ChaosResult) -> None:
    detail = "\n".join([chaos.line(), *chaos.verdict.failures, *chaos.problems])
    assert chaos.ok, detail
    assert all(chaos.kills[p] == 1 for p in KILL_POINTS), detail
    assert chaos.kills["random"] >= SPEC.random_kills, detail
    counts = chaos.verdict.counts
    assert counts["dup_client_ids"] == counts["orders_without_intent"] == counts["overfilled"] == 0
    assert counts["fills_missing"] == counts["fills_duplicated"] == counts["version_gaps"] == 0
    assert counts["projections"] == "equal" and counts["integrity"] == "ok"
    assert counts["exchange_orders"] > 0 and counts["exchange_trades"] > 0
    # every parent ended: completed (filled exactly, checked above) or expired when the kills ate
    # its window (a loaded machine restarts slowly: at 240x a 2 s restart is 8 simulated minutes)
    assert counts["completed"] + counts["expired"] == counts["executions"] == len(chaos.submitted), detail


DOCTORED = [
    pytest.param("paper", "INSERT INTO orders SELECT MAX(order_id) + 1, 'g000000000000-0-0', symbol, side, type, "
                          "time_in_force, price, orig_qty, executed_qty, cumm_quote_qty, status, created_ms, "
                          "updated_ms FROM orders", "without a durable intent", id="order-without-intent"),
    pytest.param("paper", "INSERT INTO trades SELECT MAX(trade_id) + 1, order_id, symbol, side, price, qty, quote_qty, "
                          "commission, commission_asset, is_maker, time_ms FROM trades",
                 "exchange fills not recorded by the daemon", id="fill-not-recorded"),
    pytest.param("daemon", "UPDATE fills SET qty = '0.00000001' WHERE rowid = (SELECT MIN(rowid) FROM fills)",
                 "differ from the exchange's", id="fill-differs"),
    # an event in the middle of the log that its execution has later events after: its versions gap
    pytest.param("daemon", "DELETE FROM events WHERE sequence_number = (SELECT MIN(e.sequence_number) FROM events e "
                 "WHERE e.sequence_number >= (SELECT MAX(sequence_number) / 2 FROM events) AND EXISTS (SELECT 1 "
                 "FROM events l WHERE l.aggregate_id = e.aggregate_id AND l.aggregate_version > e.aggregate_version))",
                 "not 1..n without gaps", id="event-lost"),
    pytest.param("daemon", "UPDATE executions SET filled_qty = target_qty || '1' WHERE rowid = 1",
                 "filled beyond their parent quantity", id="overfilled"),
    pytest.param("daemon", "UPDATE execution_slices SET status = 'planned' WHERE rowid = 1",
                 "projections rebuilt from the events differ", id="projection-drift"),
]


@pytest.mark.parametrize("which,sql,failure", DOCTORED)
def test_each_check_fails_on_doctored_files(chaos: ChaosResult, tmp_path: Path, which: str, sql: str,
                                            failure: str) -> None:
    files = {}
    for name in ("daemon", "paper"):
        files[name] = tmp_path / f"{name}.db"
        src, dst = sqlite3.connect(chaos.workdir / f"{name}.db"), sqlite3.connect(files[name])
        src.backup(dst)  # WAL content included
        src.close()
        dst.close()
    conn = sqlite3.connect(files[which])
    with conn:
        assert conn.execute(sql).rowcount == 1
    conn.close()
    verdict = check(files["daemon"], files["paper"], chaos.submitted)
    assert not verdict.ok and any(failure in f for f in verdict.failures), verdict.failures
