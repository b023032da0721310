"""Child processes for the chaos run: ``genesis paper-exchange`` and ``genesis run``, each in its
own session with its output appended to a log file, killed only by its own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent.parent


class ChaosError(Exception):
    """The run could not proceed (a process would not start or stop, a wait timed out)."""


def child_env(**extra: str) -> dict[str, str]:
    """The parent's environment minus what changes a daemon's behaviour, PYTHONPATH on this checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "GENESIS_DB",
                        "GENESIS_CREDENTIALS_FILE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Proc:
    """``python -m genesis <args>``; output appended to ``log``."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str], cwd: Path):
        self.name, self.log = name, log
        self.offset = log.stat().st_size if log.exists() else 0  # where this run's lines start
        self.started = time.monotonic()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "genesis", *args], cwd=cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """What this process wrote so far (not earlier runs sharing the log)."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self.offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 20) -> str:
        return f"--- {self.name} (pid {self.pid}, {self.log}) ---\n" + "\n".join(self.output().splitlines()[-lines:])

    def kill9(self) -> int:
        """SIGKILL this process (by its pid) and reap it; its exit code."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL and ``ChaosError`` if it does not stop in time."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise ChaosError(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM\n{self.tail()}") from None


def wait_until(ready: Callable[[], Any], seconds: float, what: str, procs: list[Proc] = (),  # type: ignore[assignment]
               every: float = 0.05) -> Any:
    """Poll ``ready`` until truthy; ``ChaosError`` on timeout or when one of ``procs`` exits."""
    deadline = time.monotonic() + seconds
    while True:
        for p in procs:
            if not p.alive():
                raise ChaosError(f"{p.name} exited {p.proc.returncode} while waiting for {what}\n{p.tail()}")
        try:
            value = ready()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise ChaosError(f"timed out after {seconds:.0f} s waiting for {what}\n"
                             + "\n".join(p.tail() for p in procs))
        time.sleep(every)
