"""A submission whose ``ExecutionSubmitted`` committed while the submitter was told the outcome
was unknown (``CommitOutcomeUnknownError``, see ``genesis.store.pg_commit_outcome``) is
submitted again: the execution is in the store with no runner. The second submission starts
its runner (as recovery would) and the command is marked a duplicate; the execution is worked
to the end, not left idle until the next restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import create_engine, select

from genesis.domain import events as ev
from genesis.domain.ids import new_execution_id
from genesis.engine.command_poller import CommandPoller
from genesis.store import tables as t
from genesis.store.eventstore import CommitOutcomeUnknownError
from genesis.store.inbox import enqueue_submit, pending_commands
from tests.harness import dec, harness


async def test_a_stored_submission_without_a_runner_is_worked_when_submitted_again(tmp_path: Path) -> None:
    async with harness(tmp_path / "orphan.db") as h:
        req = h.request(qty="0.5", duration="5m", request_id="desk-orphan-1")
        execution_id = new_execution_id(req.request_id)
        # what the lost answer left behind: the submission stored, no runner started
        await h.store.append([ev.ExecutionSubmitted(
            execution_id, h.clock.now(), req.request_id, req.symbol, req.side.value, req.qty, "twap",
            req.duration_seconds, 5, None, execution_style="twap", params={}, windowed=True, account="")],
            expected_version=0)
        assert h.supervisor.active_ids == []

        again = await h.supervisor.submit(req)
        assert again == execution_id
        assert h.supervisor.active_ids == [execution_id]
        await asyncio.wait_for(h.supervisor.wait_all(), timeout=60)
        row = await h.execution_row(execution_id)
        assert row["state"] == "completed"
        assert dec(row["filled_qty"]) == dec("0.5")


async def test_submitting_a_live_execution_with_a_runner_again_starts_no_second_runner(tmp_path: Path) -> None:
    async with harness(tmp_path / "twice.db") as h:
        req = h.request(qty="0.5", duration="5m", request_id="desk-twice-1")
        first = await h.supervisor.submit(req)
        task = h.supervisor._entries[first].task
        assert await h.supervisor.submit(req) == first
        assert h.supervisor.active_ids == [first] and h.supervisor._entries[first].task is task
        await asyncio.wait_for(h.supervisor.wait_all(), timeout=60)
        row = await h.execution_row(first)
        assert row["state"] == "completed" and dec(row["filled_qty"]) == dec("0.5")


async def test_an_inbox_submission_whose_commit_outcome_is_unknown_is_worked_not_rejected(tmp_path: Path) -> None:
    """The inbox's submission committed (its command marked accepted in the same transaction)
    but the store answered ``CommitOutcomeUnknownError``: the command is no longer pending, so
    no later poll would bring it back. The poller submits again until the store answers; the
    stored execution gets its runner and the command stays accepted, never rejected."""
    db = tmp_path / "inbox.db"
    async with harness(db) as h:
        req = h.request(qty="0.5", duration="5m", request_id="desk-inbox-1")
        execution_id, _ = enqueue_submit(create_engine(f"sqlite:///{db}"), req)
        real, answers = h.store.append, []

        async def append_answer_lost_once(events, **kw):  # type: ignore[no-untyped-def]
            stored = await real(events, **kw)
            answers.append(events[0].event_type)
            if len(answers) == 1:
                raise CommitOutcomeUnknownError("database commit outcome unknown: (injected)")
            return stored

        h.store.append = append_answer_lost_once  # type: ignore[method-assign]
        poller = CommandPoller(h.engine, h.store, h.supervisor, lambda: h.config)
        async with h.engine.connect() as conn:
            (cmd,) = await pending_commands(conn)
        await poller._dispatch_guarded(cmd)

        assert h.supervisor.active_ids == [execution_id]
        async with h.engine.connect() as conn:
            outcome = (await conn.execute(select(t.commands.c.outcome)
                                          .where(t.commands.c.command_id == cmd.command_id))).scalar_one()
        assert outcome == "accepted"
        await asyncio.wait_for(h.supervisor.wait_all(), timeout=60)
        row = await h.execution_row(execution_id)
        assert row["state"] == "completed" and dec(row["filled_qty"]) == dec("0.5")
        assert answers.count("ExecutionSubmitted") == 1  # stored once
