"""The daemon process against hostile conditions: signal bursts, a swapped or read-only
database, an unsafe config path, core dumps. Helpers come from ``test_daemon_process``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.engine.pidlock import LockError, PidLock
from tests.test_daemon_process import CALM, EXIT_TIMEOUT, ROOT, Workspace, ws  # noqa: F401 - ws is the fixture


def _burst(pid: int, seconds: float, sent: dict[int, int]) -> None:
    """SIGHUP, SIGUSR2, SIGUSR1 as fast as possible: the last signal of the burst is SIGUSR1."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sig in (signal.SIGHUP, signal.SIGUSR2, signal.SIGUSR1):
            os.kill(pid, sig)
            sent[sig] = sent.get(sig, 0) + 1


@pytest.mark.slow
def test_a_signal_burst_coalesces_and_the_daemon_keeps_serving(ws: Workspace):
    # a quarter of CALM: 30 m is a wall minute, so the first execution is still running when it
    # is paused after the burst, however slow the CLI calls in between are on a loaded machine
    daemon = ws.daemon(speed=str(int(CALM) // 4))
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
    daemon.wait(lambda: daemon.events("config_reloaded"), "the reload the SIGHUPs asked for")
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


# -- the database file ------------------------------------------------------------------------

def test_a_second_daemon_through_a_symlink_is_refused(ws: Workspace):
    daemon = ws.daemon(speed=CALM)
    daemon.wait_ready()
    other_dir = ws.root / "elsewhere"
    other_dir.mkdir()
    link = other_dir / "alias.db"
    link.symlink_to(ws.db)

    second = ws.daemon("--db", str(link))
    assert second.proc.wait(EXIT_TIMEOUT) != 0
    assert "another genesis daemon" in second.log_text() and str(daemon.pid) in second.log_text()
    assert not (other_dir / "alias.pid").exists()
    assert daemon.stop() == 0, daemon.tail()


def test_a_lock_file_that_would_be_the_database_is_refused(tmp_path: Path):
    db = tmp_path / "trading.pid"
    db.write_bytes(b"SQLite format 3\x00 precious")
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(ROOT / "config" / "runtime.yaml")])
    assert result.exit_code != 0
    assert "would be the database itself" in result.output and "trading.db" in result.output
    assert db.read_bytes() == b"SQLite format 3\x00 precious"

    # a lock file that is a link to the database is refused too, and left alone
    target = tmp_path / "real.db"
    target.write_bytes(b"data")
    (tmp_path / "real.pid").symlink_to(target)
    with pytest.raises(LockError, match="symlink"):
        PidLock(target).acquire()
    (tmp_path / "real.pid").unlink()
    os.link(target, tmp_path / "real.pid")
    with pytest.raises(LockError, match="would be the database itself"):
        PidLock(target).acquire()
    assert target.read_bytes() == b"data"


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_deleted_or_replaced_under_the_daemon_stops_it(ws: Workspace, how: str):
    daemon = ws.daemon(speed=CALM)
    daemon.wait_ready()
    execution_id = ws.submit("--qty", "1", "--duration", "30m", "--id", f"db-{how}")
    daemon.wait(lambda: ws.filled_children(execution_id) >= 1, "the first child order to fill")

    if how == "deleted":
        ws.db.unlink()
    else:
        copy = ws.root / "copy.db"
        copy.write_bytes(ws.db.read_bytes())
        copy.replace(ws.db)
    assert daemon.proc.wait(EXIT_TIMEOUT) == 1, daemon.tail()
    stopped = daemon.events("database_file_gone_trading_stopped")
    assert stopped and how in stopped[0]["reason"], daemon.tail()
    assert daemon.events("daemon_stopped")


def _make_immutable(path: Path) -> None:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.decode().strip()}")


def test_a_read_only_database_is_refused_before_ready(ws: Workspace):
    """Root ignores file modes: the database is made immutable (``chattr +i``) instead."""
    ws.cli("db", "upgrade")
    _make_immutable(ws.db)
    try:
        daemon = ws.daemon()
        assert daemon.proc.wait(EXIT_TIMEOUT) != 0, daemon.tail()
        assert "the database is not writable" in daemon.log_text(), daemon.tail()
        assert not daemon.events("daemon_ready")
        assert not ws.pid_file.exists()
    finally:
        subprocess.run(["chattr", "-i", str(ws.db)], check=False)


# -- the config file on SIGHUP ---------------------------------------------------------------

def test_sighup_on_a_secrets_file_or_a_fifo_is_rejected_without_content_and_stops_cleanly(ws: Workspace):
    daemon = ws.daemon(speed=CALM)
    daemon.wait_ready()
    secrets = ws.root / "shadow"
    secrets.write_text("root:$6$salt$SECRETHASHabcdef:19000:0:99999:7:::\n")
    secrets.chmod(0o600)
    ws.config.unlink()
    ws.config.symlink_to(secrets)
    daemon.signal(signal.SIGHUP)
    rejected = daemon.wait(lambda: daemon.events("config_reload_rejected"), "the secrets file rejected")
    assert "line 1" in rejected[0]["error"]
    assert "SECRETHASH" not in daemon.log_text()

    ws.config.unlink()
    os.mkfifo(ws.config)  # nobody ever writes to it
    daemon.signal(signal.SIGHUP)
    rejected = daemon.wait(lambda: len(daemon.events("config_reload_rejected")) == 2, "the FIFO rejected")
    assert "not a regular file" in daemon.events("config_reload_rejected")[1]["error"]
    assert daemon.stop() == 0, daemon.tail()


# -- core dumps ------------------------------------------------------------------------------

def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (ROOT / "config" / "genesis.service").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_forbids_core_dumps():
    assert _unit_settings()["LimitCORE"] == ["0"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_running_daemon_is_not_dumpable_and_has_no_core_limit(ws: Workspace):
    daemon = ws.daemon()
    assert daemon.wait_ready()["dumpable"] is False
    limits = Path(f"/proc/{daemon.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
    assert daemon.stop() == 0, daemon.tail()
