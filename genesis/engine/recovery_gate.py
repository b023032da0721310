"""Held closed while a restart recovery pass reconciles its executions with the venue.

A runner of the pass reconciles (``genesis.engine.recovery``), then waits at the gate before
deciding anything new, in two steps:

- until every execution of the pass has its child orders settled (their outcomes asked of the
  venue and recorded) or its runner ended: fills the venue reported while the daemon was down
  are then in the position book and the account caps before any risk check of a new slice
  reads them;
- then until every execution of the pass has reconciled (its re-spread recorded too), for at
  most ``RECOVERY_WAIT_SECONDS``: slices do not compete with the pass's re-spreads for the
  loop, and a re-spread held by market data that is unavailable does not hold the others
  longer than that.

A cancel or a stop of a waiting execution ends its wait (its control wakes it): it decides no
slice, so nothing reads the positions. A venue that
answers one execution's lookups slowly holds the others for as long (their positions would be
wrong without its fills). An execution submitted while the pass settles waits at its gate too.

The supervisor reads the pass's executions in batches; the first batches' re-spreads go to the
store while the next is read.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from typing import Iterator

RECOVERY_WAIT_SECONDS = 10.0  # the longest a runner waits for the other executions' re-spreads


class RecoveryGate:
    """``expect`` each execution of the pass as its runner is started; ``settled`` once its
    child orders are settled and ``recovered`` once it has reconciled (each idempotent; an
    ended runner counts as both); ``seal`` once every runner of the pass is started. The
    events are set when the pass is sealed and nobody is expected any more (or on
    ``release``: shutdown)."""

    def __init__(self) -> None:
        self.all_settled = asyncio.Event()
        self.all_recovered = asyncio.Event()
        self._unsettled: set[str] = set()
        self._unrecovered: set[str] = set()
        self._sealed = False
        self._wakes: dict[asyncio.Event, set[asyncio.Event]] = {}  # by step: set when it opens (``wakes``)

    def expect(self, execution_id: str) -> None:
        self._unsettled.add(execution_id)
        self._unrecovered.add(execution_id)

    def settled(self, execution_id: str) -> None:
        self._unsettled.discard(execution_id)
        self._check()

    def recovered(self, execution_id: str) -> None:
        self._unsettled.discard(execution_id)
        self._unrecovered.discard(execution_id)
        self._check()

    def seal(self) -> None:
        self._sealed = True
        self._check()

    def release(self) -> None:
        """Open at once (shutdown: the runners waiting here must see their stop)."""
        self._open(self.all_settled)
        self._open(self.all_recovered)

    @contextmanager
    def wakes(self, step: asyncio.Event, event: asyncio.Event) -> Iterator[None]:
        """Within the block, ``event`` is set when ``step`` (``all_settled`` or
        ``all_recovered``) opens: a runner waits for the gate or its control on one event,
        without a task per wait relaying each (a restart has every runner wait here)."""
        wakes = self._wakes.setdefault(step, set())
        wakes.add(event)
        try:
            yield
        finally:
            wakes.discard(event)

    @property
    def open(self) -> bool:
        return self.all_recovered.is_set()

    def _check(self) -> None:
        if self._sealed and not self._unsettled:
            self._open(self.all_settled)
        if self._sealed and not self._unrecovered:
            self._open(self.all_recovered)

    def _open(self, step: asyncio.Event) -> None:
        step.set()
        for event in self._wakes.get(step, ()):
            event.set()
