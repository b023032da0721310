"""One daemon per database: an exclusive ``flock`` on ``<db>.pid``, which also holds the pid.

The lock file sits next to the file the database path resolves to (through symlinks), so every
name of one database shares one lock; it is opened without following a symlink and is never the
database itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


class LockError(Exception):
    """Another daemon holds the lock, or the lock file cannot be created."""


def lock_path(db_path: Path) -> Path:
    """The lock (pid) file of the database at ``db_path``, whatever name leads to it."""
    return Path(os.path.realpath(db_path)).with_suffix(".pid")


def _refuse_the_database_as_lock(db_path: Path, path: Path, fd: int | None = None) -> None:
    """The lock file is truncated and deleted: it must never be the database."""
    same = path == Path(os.path.realpath(db_path))
    if not same and fd is not None:
        try:
            db = os.stat(db_path)
        except FileNotFoundError:
            return
        lock = os.fstat(fd)
        same = (lock.st_dev, lock.st_ino) == (db.st_dev, db.st_ino)
    if same:
        raise LockError(f"--db {db_path}: its lock file {path} would be the database itself; "
                        f"give the database another suffix (e.g. {path.with_suffix('.db').name})")


class PidLock:
    def __init__(self, db_path: Path, write_pid: bool = True):
        self.db_path = db_path
        self.path = lock_path(db_path)
        self.write_pid = write_pid
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``LockError`` naming the pid that holds it."""
        path = self.path
        _refuse_the_database_as_lock(self.db_path, path)
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
                raise LockError(f"cannot create the lock file {path}: {reason}") from None
            try:
                _refuse_the_database_as_lock(self.db_path, path, fd)
            except LockError:
                os.close(fd)
                raise
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
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)
    return None
