"""The daemon process against hostile conditions: signal bursts, a swapped or read-only
database, an unsafe config path, core dumps. Helpers come from ``test_daemon_process``."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import pytest

from tests.test_daemon_process import CALM, Workspace, ws  # noqa: F401 - ws is the fixture


def _burst(pid: int, seconds: float, sent: dict[int, int]) -> None:
    """SIGHUP, SIGUSR2, SIGUSR1 as fast as possible: the last signal of the burst is SIGUSR1."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sig in (signal.SIGHUP, signal.SIGUSR2, signal.SIGUSR1):
            os.kill(pid, sig)
            sent[sig] = sent.get(sig, 0) + 1


@pytest.mark.slow
def test_a_signal_burst_coalesces_and_the_daemon_keeps_serving(ws: Workspace):
    daemon = ws.daemon(speed=CALM)
    daemon.wait_ready()
    before = ws.submit("--qty", "1", "--duration", "30m", "--id", "burst-before")
    daemon.wait(lambda: ws.state(before) == "running", "the first execution to run")

    sent: dict[int, int] = {}
    burst = threading.Thread(target=_burst, args=(daemon.pid, 2.0, sent))
    burst.start()
    during = ws.submit("--qty", "0.5", "--duration", "30m", "--id", "burst-during")
    burst.join()

    daemon.wait(lambda: ws.state(during) not in (None, "queued"), "the submission made during the burst")
    # the kernel delivers pending signals lowest number first, so which of SIGUSR1/SIGUSR2 came
    # last is the daemon's to see, not ours: pause until one SIGUSR1 alone has been seen
    daemon.wait(lambda: os.kill(daemon.pid, signal.SIGUSR1) or ws.state(before) == "paused",
                "pause after the burst")
    after = ws.submit("--qty", "0.2", "--duration", "30m", "--id", "burst-after")
    daemon.wait(lambda: ws.state(after) not in (None, "queued", "pending"), "a submission after the burst")
    assert daemon.stop() == 0, daemon.tail()

    log = daemon.log_text()
    assert "wakeup fd" not in log and "Traceback" not in log, daemon.tail()
    reloads = len(daemon.events("config_reloaded"))
    assert 1 <= reloads < sent[signal.SIGHUP] / 10, (reloads, sent)
    toggles = len(daemon.events("signal_pause_all")) + len(daemon.events("signal_resume_all"))
    assert toggles < sent[signal.SIGUSR1] + sent[signal.SIGUSR2], (toggles, sent)


async def test_a_burst_is_one_callback_that_knows_which_signal_came_last():
    from genesis.engine.signals import SignalBridge

    seen: list[dict[int, int]] = []
    bridge = SignalBridge(asyncio.get_running_loop(), (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP),
                          seen.append)
    bridge.install()
    try:
        for _ in range(200):  # the loop does not run in between: one burst
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                os.kill(os.getpid(), sig)
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(seen) == 1 and set(seen[0]) == {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
        assert max(seen[0], key=seen[0].__getitem__) == signal.SIGUSR1

        os.kill(os.getpid(), signal.SIGUSR2)  # a later signal: a second callback
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(seen) == 2 and set(seen[1]) == {signal.SIGUSR2}
    finally:
        bridge.uninstall()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
