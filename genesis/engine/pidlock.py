"""One daemon per database: an exclusive ``flock`` on ``<db>.pid``, which also holds the pid."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockError(Exception):
    """Another daemon holds the lock, or the lock file cannot be created."""


class PidLock:
    def __init__(self, db_path: Path, write_pid: bool = True):
        self.db_path = db_path
        self.path = db_path.with_suffix(".pid")
        self.write_pid = write_pid
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``LockError`` naming the pid that holds it."""
        path = self.path
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise LockError(f"cannot create the lock file {path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise LockError(f"another genesis daemon (pid {other}) is running on {self.db_path}; "
                                f"stop it first (lock file {path})") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous daemon removed the file between our open and our lock: retry
        os.ftruncate(fd, 0)
        if self.write_pid:
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = None


def running_daemon_pid(db_path: Path) -> str | None:
    """The pid recorded by a daemon that holds the lock on ``db_path``; None when none runs."""
    try:
        fd = os.open(db_path.with_suffix(".pid"), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)
    return None
