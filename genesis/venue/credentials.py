"""Exchange API credentials: loaded from the environment or a private file, never logged.

Lookup order for exchange ``binance`` (the id upper-cased, non-alphanumerics as ``_``):

1. ``GENESIS_BINANCE_API_KEY`` / ``GENESIS_BINANCE_API_SECRET`` (/ ``..._API_PASSWORD``)
2. ``GENESIS_API_KEY`` / ``GENESIS_API_SECRET`` (/ ``GENESIS_API_PASSWORD``)
3. a credentials file: the ``path`` argument or ``$GENESIS_CREDENTIALS_FILE``. It must be
   owned by the current user and have mode 0600 (no group/other bits), otherwise loading is
   refused with a message naming the file and the fix. Format (YAML or JSON)::

       {"apiKey": "...", "secret": "..."}                 # one account
       {"binance": {"apiKey": "...", "secret": "..."}}    # per exchange id

Every loaded secret is registered with ``redact_secrets``, the structlog processor that masks
secret values (and keys named like secret/apiKey/signature/password) in every log event.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, MutableMapping

import yaml

REDACTED = "***"
_SECRET_KEY_RE = re.compile(r"secret|api[_-]?key|signature|passphrase|password|x-mbx-apikey",
                            re.IGNORECASE)
_SIGNATURE_IN_TEXT_RE = re.compile(r"(signature=)[0-9A-Za-z%+/=_-]+")
_KEY_FIELDS = ("apiKey", "api_key", "key")
_SECRET_FIELDS = ("secret", "api_secret", "apiSecret")
_PASSWORD_FIELDS = ("password", "passphrase")
_known_secrets: set[str] = set()
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words in log lines


class CredentialsError(Exception):
    """Credentials are missing, incomplete, or stored unsafely. The message names the fix."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """API key and secret of one exchange account. ``repr`` never shows the values."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    source: str = ""

    def ccxt_config(self) -> dict[str, str]:
        """The ccxt constructor keys for these credentials."""
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


def register_secret(value: str | None) -> None:
    """Make ``redact_secrets`` mask ``value`` wherever it appears in a log event."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _known_secrets.add(value)


def load_credentials(exchange_id: str, env: Mapping[str, str] | None = None,
                     path: str | Path | None = None) -> Credentials | None:
    """Credentials for ``exchange_id`` (see module docstring), or None when none are configured.

    Raises ``CredentialsError`` for half-configured variables, an unreadable or unsafe file, or
    a file without an entry for this exchange."""
    env = os.environ if env is None else env
    prefix = "GENESIS_" + re.sub(r"[^A-Za-z0-9]", "_", exchange_id).upper() + "_API_"
    for p in (prefix, "GENESIS_API_"):
        key, secret = env.get(p + "KEY"), env.get(p + "SECRET")
        if key or secret:
            if not (key and secret):
                missing = p + ("SECRET" if key else "KEY")
                raise CredentialsError(f"{missing} is not set (set both {p}KEY and {p}SECRET)")
            return _registered(Credentials(key, secret, env.get(p + "PASSWORD"), f"env {p}*"))
    file = path if path is not None else env.get("GENESIS_CREDENTIALS_FILE")
    if not file:
        return None
    return _registered(_read_file(Path(file), exchange_id))


def check_private_file(path: Path) -> None:
    """Refuse a secrets file that other users could read or that someone else owns."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise CredentialsError(f"credentials file {path} has mode {mode:04o}: other users may read "
                               f"it. Refusing to use it; fix with: chmod 600 {path}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CredentialsError(f"credentials file {path} is owned by uid {st.st_uid}, not by the "
                               f"user running genesis (uid {os.getuid()}); fix with: chown "
                               f"$(id -u) {path} && chmod 600 {path}")


def _read_file(path: Path, exchange_id: str) -> Credentials:
    check_private_file(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"credentials file {path}: cannot read it ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        # never the parser's own message: it quotes the offending line, i.e. a secret
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CredentialsError(f"credentials file {path}: not valid YAML or JSON{where} (content not shown: "
                               f"it holds secrets)") from None
    if isinstance(data, dict) and isinstance(data.get(exchange_id), dict):
        data = data[exchange_id]
    if not isinstance(data, dict):
        raise CredentialsError(f"credentials file {path}: expected a mapping with apiKey/secret")
    key = _first(data, _KEY_FIELDS)
    secret = _first(data, _SECRET_FIELDS)
    if not (key and secret):
        raise CredentialsError(f"credentials file {path}: no apiKey and secret for {exchange_id!r} "
                               f"(top level or under a {exchange_id!r} key)")
    return Credentials(key, secret, _first(data, _PASSWORD_FIELDS), f"file {path}")


def _first(data: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = data.get(name)
        if value:
            return str(value)
    return None


def _registered(creds: Credentials) -> Credentials:
    for value in (creds.api_key, creds.secret, creds.password):
        register_secret(value)
    return creds


# --------------------------------------------------------------------------- redaction
def redact_secrets(logger: Any, method_name: str,
                   event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask registered secret values anywhere in the event (nested dicts,
    lists, strings) and the value of every key named like secret/apiKey/signature/password.
    Place it before the renderer.

    An exception (``exc_info``, from ``log.exception``) is rendered here as a plain traceback
    and redacted too: left to the renderer it would come out unredacted (its message), and on
    a terminal with every local variable of every frame (rich tracebacks), secrets included."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        text = _exception_text(exc_info)
        if text is not None:
            event_dict["exception"] = text
    for key in list(event_dict):
        event_dict[key] = _redact(key, event_dict[key])
    return event_dict


def _exception_text(exc_info: Any) -> str | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return None
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def redact_text(text: str) -> str:
    """``text`` with registered secrets and ``signature=...`` query values masked."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "signature=" not in text:  # what the pattern starts with: nothing to mask (every log line)
        return text
    return _SIGNATURE_IN_TEXT_RE.sub(r"\1" + REDACTED, text)


@lru_cache(maxsize=1024)
def _names_a_secret(key: str) -> bool:
    return _SECRET_KEY_RE.search(key) is not None


def _redact(key: Any, value: Any) -> Any:
    if isinstance(key, str) and _names_a_secret(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(None, v) for v in value)
    if isinstance(value, BaseException):
        text = redact_text(str(value))
        return value if text == str(value) else f"{type(value).__name__}: {text}"
    return value
