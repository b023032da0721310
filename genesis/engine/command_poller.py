"""The daemon's command inbox: ``genesis submit/pause/resume/cancel/urgency`` insert rows into
``commands``; the poller reads the pending ones, validates each again against the daemon's
config and hands it to the supervisor, or records why it was refused (``rejected``,
``ignored``). Whatever goes wrong with one command becomes its recorded outcome; the poller
goes on serving the others.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from genesis.config import RuntimeConfig
from genesis.domain.ids import is_execution_id
from genesis.engine.control import Desire
from genesis.engine.supervisor import SubmissionRejected, Supervisor
from genesis.engine.venue_calls import RetryPolicy
from genesis.algorithms.registry import submit_options
from genesis.requests import RequestError, SubmitRequest, validate_submit
from genesis.store.eventstore import CommitOutcomeUnknownError, EventStore, StorageError, StoreClosedError
from genesis.store.inbox import Command, claim_commands, pending_commands, unclaim_command, worked_elsewhere
from genesis.venue.base import PermanentVenueError, VenueError

log = structlog.get_logger("genesis.daemon")
COMMAND_CHAINS_AT_ONCE = 32  # executions whose commands the poller applies concurrently
# between submissions whose commit outcome is unknown: 1 s doubling up to 30 s
SUBMIT_SETTLE_BACKOFF = RetryPolicy(base_seconds=1.0, max_seconds=30.0)


class CommandPoller:
    """``config`` returns the config in force (a SIGHUP replaces it between two polls);
    ``nudge``, when set, starts the next poll at once (the API just wrote a command).
    ``owner`` (PostgreSQL: the daemon's lease owner): commands are claimed for it
    (``claim_commands``), so several daemons on one inbox never take the same one; a control
    command for an execution another daemon works is given back instead of ignored.
    ``accounts``: only commands of these accounts (or of none) are taken (None: every command);
    one for another account stays pending for the daemon that holds it."""

    def __init__(self, database: AsyncEngine, store: EventStore, supervisor: Supervisor,
                 config: Callable[[], RuntimeConfig], nudge: asyncio.Event | None = None,
                 owner: str | None = None, accounts: tuple[str, ...] | None = None):
        self.database, self.store, self.supervisor, self.config = database, store, supervisor, config
        self.owner, self.accounts = owner, accounts
        self.nudge = nudge or asyncio.Event()
        self._delivered: set[int] = set()  # handed to the supervisor: not again while it settles them

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``engine.command_poll_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                commands = await self._read()
            except SQLAlchemyError as exc:
                log.error("command_poll_failed", error=str(exc))
                commands = []
            chains: dict[str, list[Command]] = {}  # one execution's commands stay in order
            for cmd in commands:
                if cmd.command_id not in self._delivered:
                    chains.setdefault(cmd.execution_id, []).append(cmd)
            slots = asyncio.Semaphore(COMMAND_CHAINS_AT_ONCE)
            await asyncio.gather(*(self._dispatch_chain(chain, slots) for chain in chains.values()))
            try:
                await asyncio.wait_for(self.nudge.wait(), self.config().engine.command_poll_seconds)
            except TimeoutError:
                pass
            self.nudge.clear()

    async def _read(self) -> list[Command]:
        if self.owner is None:  # SQLite: the one daemon on the file reads the inbox
            async with self.database.connect() as conn:
                return await pending_commands(conn, self.accounts)
        async with self.database.begin() as conn:
            return await claim_commands(conn, self.owner, self.accounts or ())

    async def _not_here(self, cmd: Command) -> bool:
        """A control command for an execution this daemon does not run but another may:
        given back to the inbox (True), else False (settled here as ``ignored``)."""
        if self.owner is None:
            return False
        async with self.database.begin() as conn:
            if not await worked_elsewhere(conn, cmd.execution_id, self.owner):
                return False
            await unclaim_command(conn, cmd.command_id, self.owner)
        self._delivered.discard(cmd.command_id)
        log.info("command_left_for_owner", command_id=cmd.command_id, execution_id=cmd.execution_id)
        return True

    async def _dispatch_chain(self, chain: list[Command], slots: asyncio.Semaphore) -> None:
        """One execution's commands, in order; up to ``COMMAND_CHAINS_AT_ONCE`` executions side
        by side, so a burst of submissions shares the store's group commits instead of one
        commit each (and the venue sees a bounded number of book requests at once)."""
        async with slots:
            for cmd in chain:
                await self._dispatch_guarded(cmd)

    async def _dispatch_guarded(self, cmd: Command) -> None:
        """Task boundary of one command: whatever goes wrong with it becomes its recorded
        rejection, and the poller goes on serving the others."""
        try:
            await self._dispatch(cmd)
        except Exception as exc:  # noqa: BLE001 - recorded as the command's outcome
            log.exception("command_failed", command_id=cmd.command_id, kind=cmd.kind)
            try:
                await self.store.mark_commands([(cmd.command_id, "rejected", f"internal error: {exc!r}")])
            except (StorageError, StoreClosedError):  # storage fault: the next poll retries the command
                self._delivered.discard(cmd.command_id)

    async def _submit(self, req: SubmitRequest, cmd: Command) -> None:
        """Submit; when the store cannot tell whether the submission committed (its answer was
        lost, ``CommitOutcomeUnknownError``), submit again until it answers: either the first
        one committed (the command is then no longer pending, so no later poll would see it
        again) and the supervisor starts the stored execution's runner, or it did not and this
        one records it. Never marked rejected: the execution may well exist."""
        attempt = 0
        while True:
            try:
                await self.supervisor.submit(req, cmd.execution_id, cmd.command_id)
                return
            except CommitOutcomeUnknownError as exc:
                delay = SUBMIT_SETTLE_BACKOFF.delay(attempt)
                log.warning("submission_outcome_unknown", command_id=cmd.command_id,
                            execution_id=cmd.execution_id, retry_in_seconds=delay, error=str(exc))
                await asyncio.sleep(delay)
                attempt += 1

    async def _dispatch(self, cmd: Command) -> None:
        bound = log.bind(command_id=cmd.command_id, kind=cmd.kind, execution_id=cmd.execution_id)
        problem = ("payload is not a JSON object" if cmd.payload is None
                   else None if is_execution_id(cmd.execution_id)
                   else f"malformed execution id {cmd.execution_id[:40]!r}")
        if problem is not None:
            bound.warning("command_rejected", reason=problem)
            await self.store.mark_commands([(cmd.command_id, "rejected", problem)])
            return
        p = cmd.payload
        assert p is not None
        if cmd.kind == "submit":
            try:
                duration = p["duration_seconds"]
                if not isinstance(duration, int) or isinstance(duration, bool):
                    raise RequestError("duration", f"{duration!r} is not a whole number of seconds")
                req = validate_submit(symbol=p["symbol"], side=p["side"], qty=p["qty"], algo=p["algo"],
                                      duration=duration, slices=p.get("slice_count"),
                                      limit_price=p.get("limit_price"), request_id=p.get("request_id"),
                                      instruments=self.supervisor.instruments, config=self.config(),
                                      urgency=p.get("urgency"),
                                      options={o.name: p.get(o.name) for o in submit_options()},
                                      account=p.get("account"))
                self._delivered.add(cmd.command_id)
                await self._submit(req, cmd)
            except (RequestError, SubmissionRejected, PermanentVenueError, KeyError, TypeError, ValueError) as exc:
                bound.warning("submission_rejected", reason=str(exc))
                await self.store.mark_commands([(cmd.command_id, "rejected", str(exc))])
            except VenueError as exc:  # transient (nothing was recorded): the next poll tries again
                bound.warning("submission_deferred", reason=f"{type(exc).__name__}: {exc}")
                self._delivered.discard(cmd.command_id)
            return
        if cmd.kind == "urgency":
            self._delivered.add(cmd.command_id)
            level = str(p.get("urgency", ""))
            if (not self.supervisor.set_urgency(cmd.execution_id, level, "command urgency", cmd.command_id)
                    and not await self._not_here(cmd)):
                await self.store.mark_commands([(cmd.command_id, "ignored", "execution is not live")])
            return
        desire = {"pause": Desire.PAUSE, "resume": Desire.RUN, "cancel": Desire.CANCEL}.get(cmd.kind)
        if desire is None:
            await self.store.mark_commands([(cmd.command_id, "rejected", f"unknown command {cmd.kind!r}")])
            return
        self._delivered.add(cmd.command_id)
        if (not self.supervisor.control(cmd.execution_id, desire, f"command {cmd.kind}", cmd.command_id)
                and not await self._not_here(cmd)):
            await self.store.mark_commands([(cmd.command_id, "ignored", "execution is not live")])
        bound.info("command_delivered")
