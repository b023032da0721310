"""API bearer tokens: a JSON file, mode 0600: ``--tokens PATH``, by default
``<db>.tokens.json`` beside a SQLite database (a PostgreSQL ``--db`` has no file beside it:
``--tokens`` is required there, ``token_path``).

Two roles: ``read`` (every GET) and ``trader`` (also submissions and controls). The file is
created at the first ``genesis run --http`` with one token of each role when it is missing;
``genesis token create --role read|trader`` adds one. The daemon re-reads the file when it
changes, so a new token works at once. Standard library only: the CLI imports this module.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROLES = ("read", "trader")
TOKEN_PREFIX = "gen_"


class TokenFileError(Exception):
    """The token file cannot be used (unreadable, not JSON, readable by others...)."""


class TokenFileMissing(ValueError):
    """No token file location: a PostgreSQL database and no ``--tokens``."""


def token_path(db: object, tokens: str | Path | None = None) -> Path:
    """The token file: ``tokens`` when given, else beside a SQLite file (``genesis.db`` ->
    ``genesis.db.tokens.json``). ``db`` is what ``genesis.store.location.parse_db`` returns;
    a PostgreSQL URL with no ``tokens`` raises ``TokenFileMissing``."""
    if tokens is not None:
        return Path(tokens)
    if not isinstance(db, (str, Path)) or "://" in str(db):
        raise TokenFileMissing("--tokens PATH is required with a PostgreSQL --db "
                               "(the API token file has no database file to sit beside)")
    p = Path(db)
    return p.with_name(p.name + ".tokens.json")


@dataclass(frozen=True, slots=True)
class Token:
    token: str
    role: str
    created_at: str


def new_token(role: str) -> Token:
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of: {', '.join(ROLES)}")
    return Token(TOKEN_PREFIX + secrets.token_urlsafe(32), role, datetime.now(timezone.utc).isoformat())


def ensure_token_file(path: str | Path) -> list[Token]:
    """Create the token file ``path`` with one ``trader`` and one ``read`` token when it is
    missing. Returns the tokens created (empty when the file already existed)."""
    tokens = [new_token("trader"), new_token("read")]
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return []
    with os.fdopen(fd, "w") as f:
        json.dump(_document(tokens), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    return tokens


def create_token(path: str | Path, role: str) -> Token:
    """Add a token of ``role`` to the file ``path`` (created when missing); returns it."""
    token = new_token(role)
    ensure_token_file(path)
    path = Path(path)
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # two `token create` at once both land
        tokens = _parse(path, f.read())
        tokens.append(token)
        f.seek(0)
        json.dump(_document(tokens), f, indent=2)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    return token


def load_tokens(path: str | Path) -> list[Token]:
    """The tokens of the file ``path``, checked (``TokenFileError``)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read the token file: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(f"{path}: readable by other users (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}")
    return _parse(path, text)


def _document(tokens: list[Token]) -> dict[str, object]:
    return {"tokens": [{"token": t.token, "role": t.role, "created_at": t.created_at} for t in tokens]}


def _parse(path: Path, text: str) -> list[Token]:
    try:
        entries = json.loads(text)["tokens"]
        tokens = [Token(str(e["token"]), str(e["role"]), str(e.get("created_at", ""))) for e in entries]
    except (ValueError, KeyError, TypeError):
        raise TokenFileError(f'{path}: not a token file (expected {{"tokens": [{{"token": ..., "role": ...}}]}})') from None
    bad = [t.role for t in tokens if t.role not in ROLES]
    if bad:
        raise TokenFileError(f"{path}: unknown role {bad[0]!r}; use one of: {', '.join(ROLES)}")
    return tokens


class TokenBook:
    """The tokens of the file ``path``, re-read when it changes (checked on each lookup)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._tokens: list[Token] = []

    def role_of(self, presented: str) -> str | None:
        """The role of ``presented``, or None when it is no token of this database."""
        self._refresh()
        found = None
        for t in self._tokens:  # constant time per entry: no early exit on a match
            if hmac.compare_digest(t.token.encode(), presented.encode()):
                found = t.role
        return found

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            self._tokens, self._stamp = [], None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._tokens = load_tokens(self.path)
            except TokenFileError:
                self._tokens = []  # a broken file authorises nobody
            self._stamp = stamp
