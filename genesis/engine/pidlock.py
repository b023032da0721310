"""One daemon per database: an exclusive ``flock`` on ``<db>.pid``, which also holds the pid
(SQLite), or a session advisory lock (PostgreSQL: ``AdvisoryLock``).

The lock file sits next to the file the database path resolves to (through symlinks), so every
name of one database shares one lock; it is opened without following a symlink and is never the
database itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from genesis.store.location import Db, shown_db


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


# -- PostgreSQL: a session advisory lock -------------------------------------------------------

DAEMON_LOCK_KEY = 0x67656E6573697364  # "genesisd"; advisory locks are per database already
_APP_PREFIX = "genesis daemon "  # the lock session's application_name: "genesis daemon pid 123 on host"
_HOLDER = text("""
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = (:key >> 32)::oid AND l.objid = (:key & 4294967295)::oid""")


class AdvisoryLock:
    """A daemon runs on this PostgreSQL database: ``pg_try_advisory_lock_shared`` on a
    connection of its own, held for the daemon's life (the server releases it when that
    session ends, however the daemon ends). The session's ``application_name`` names the
    holder's pid and host. Several daemons share it (a leader and its standbys: which one
    works an account is decided by the account leases, ``genesis.engine.lease_keeper``);
    ``genesis db rebuild-projections`` refuses to run while any daemon holds it."""

    path = None  # no lock file

    def __init__(self, url: URL):
        self.url = url
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``LockError`` naming the daemon that holds it. Also refuse a
        server that takes no writes (a standby, a read-only default)."""
        me = f"{_APP_PREFIX}pid {os.getpid()} on {socket.gethostname()}"
        self._engine = create_engine(self.url, poolclass=NullPool, connect_args={"application_name": me[:63]})
        try:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if not self._conn.execute(text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": DAEMON_LOCK_KEY}).scalar():
                other = _holder(self._conn.execute(_HOLDER, {"key": DAEMON_LOCK_KEY}).first()) or "pid unknown"
                raise LockError(f"another genesis daemon ({other}) is running on {shown_db(self.url)}; "
                                f"stop it first (advisory lock {DAEMON_LOCK_KEY} on the database)")
            if self._conn.execute(text("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'")).scalar():
                raise LockError(f"{shown_db(self.url)}: the database takes no writes (a standby, or "
                                f"default_transaction_read_only); point --db at the primary")
        except OperationalError as exc:
            self.release()
            raise LockError(f"{shown_db(self.url)}: cannot connect: {str(exc.orig).strip()}") from None
        except LockError:
            self.release()
            raise

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the session: the server releases the lock
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def daemon_lock(db: Db, write_pid: bool = True) -> PidLock | AdvisoryLock:
    """The single-daemon lock of ``db``: a pid file next to a SQLite file, an advisory lock
    on a PostgreSQL database."""
    return AdvisoryLock(db) if isinstance(db, URL) else PidLock(db, write_pid)


def running_daemon(db: Db) -> str | None:
    """Who holds the single-daemon lock of ``db`` (``pid 123``; on PostgreSQL ``pid 123 on
    host``); None when no daemon runs."""
    if not isinstance(db, URL):
        pid = running_daemon_pid(db)
        return None if pid is None else f"pid {pid}"
    engine = create_engine(db, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _holder(conn.execute(_HOLDER, {"key": DAEMON_LOCK_KEY}).first())
    finally:
        engine.dispose()


def _holder(row: Any) -> str | None:
    """The holder's session name without its prefix; None when no session holds the lock."""
    if row is None:
        return None
    return str(row[0] or "").removeprefix(_APP_PREFIX) or "pid unknown"
