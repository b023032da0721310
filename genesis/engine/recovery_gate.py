"""Held closed while a restart recovery pass reconciles its executions with the venue.

A runner of the pass reconciles (``genesis.engine.recovery``), then waits at the gate: nothing
new is sent by any of them until every execution of the pass has reconciled (or its runner
ended). Fills the venue reported while the daemon was down are then in the position book and
the account caps before any risk check of a new slice reads them, and the pass's appends (the
re-spreads) go to the store while the next batch of executions is still being read.
"""

from __future__ import annotations

import asyncio


class RecoveryGate:
    """``expect`` each execution of the pass as its runner is started, ``arrive`` once it has
    reconciled or ended (idempotent), ``seal`` once every runner of the pass is started;
    ``opened`` is set when the pass is sealed and nothing is expected any more (or on
    ``release``: shutdown)."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self._expected: set[str] = set()
        self._sealed = False

    def expect(self, execution_id: str) -> None:
        self._expected.add(execution_id)

    def arrive(self, execution_id: str) -> None:
        self._expected.discard(execution_id)
        self._check()

    def seal(self) -> None:
        self._sealed = True
        self._check()

    def release(self) -> None:
        """Open at once (shutdown: the runners waiting here must see their stop)."""
        self.opened.set()

    def _check(self) -> None:
        if self._sealed and not self._expected:
            self.opened.set()
