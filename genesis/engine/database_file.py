"""The database file under the daemon: writable before it reports ready, and the same file
(device and inode) for as long as it trades.

A database deleted or replaced while the daemon runs would go unnoticed by SQLite: the open
connections keep writing into the unlinked file, and everything traded from then on is lost at
the next start. ``watch_identity`` notices within a second and fails, which stops the daemon
with exit code 1.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import structlog

log = structlog.get_logger("genesis.daemon")

IDENTITY_CHECK_SECONDS = 1.0


class DatabaseFileError(Exception):
    """The database file is not writable, or it was deleted or replaced under the daemon."""


def file_identity(path: Path) -> tuple[int, int]:
    """``(st_dev, st_ino)`` of the file ``path`` leads to now."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DatabaseFileError(f"{path}: the database file was deleted") from None
    return st.st_dev, st.st_ino


def check_writable(path: Path, busy_timeout_seconds: float = 10.0) -> None:
    """Write to the database in a transaction that is rolled back; ``DatabaseFileError`` when
    SQLite refuses (an immutable file, a read-only mount or directory, a full disk...)."""
    conn = sqlite3.connect(path, timeout=busy_timeout_seconds, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE main.genesis_write_probe (x)")  # a real page write, never committed
    except sqlite3.Error as exc:
        raise DatabaseFileError(f"{path}: the database is not writable ({exc}); check the file's "
                                f"permissions and attributes (lsattr) and the mount") from None
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


async def watch_identity(path: Path, identity: tuple[int, int],
                         interval_seconds: float = IDENTITY_CHECK_SECONDS) -> None:
    """Raise ``DatabaseFileError`` once ``path`` no longer leads to the file ``identity`` names."""
    while True:
        await asyncio.sleep(interval_seconds)  # wall time: the simulated clock may run faster
        try:
            now = file_identity(path)
        except DatabaseFileError as exc:
            reason = str(exc)
        else:
            if now == identity:
                continue
            reason = f"{path}: the database file was replaced by another file (inode {identity[1]} is now {now[1]})"
        log.critical("database_file_gone_trading_stopped", reason=reason,
                     note="nothing more is written to the old file; restart on the right database")
        raise DatabaseFileError(reason)
