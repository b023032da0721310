"""Deterministic identifiers.

A child order's client id is a pure function of (store namespace, execution, slice, attempt),
so a retry or a restart can always find what was sent. The namespace is random per database
(``store_identity``, created when the database is): two databases trading one account never
make the same client id, even for the same ``--id`` (the same execution id). The format fits
Binance's ``newClientOrderId`` rule ``^[.A-Z:/a-z0-9_-]{1,36}$``.

Ids made before databases had a namespace (``g<execution>-<slice>-<attempt>``) still parse:
their intents carry them, and recovery looks orders up by the stored id, never a recomputed one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

NAMESPACE_HEX_CHARS = 10
_CLIENT_ID_RE = re.compile(r"^g(?:([0-9a-f]{10})-)?([0-9a-f]{12})-(\d{1,5})-(\d{1,3})$")
_EXEC_ID_RE = re.compile(r"^[0-9a-f]{12}$")
_NAMESPACE_RE = re.compile(r"^[0-9a-f]{10}$")


def new_execution_id(request_id: str | None = None) -> str:
    """12 hex characters; derived from ``request_id`` when given so a resubmission maps to the
    same execution."""
    if request_id is None:
        return uuid.uuid4().hex[:12]
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:12]


def is_execution_id(value: str) -> bool:
    return bool(_EXEC_ID_RE.match(value))


def new_store_namespace() -> str:
    """A database's random client id namespace: 10 lowercase hex characters (40 bits)."""
    return secrets.token_hex(NAMESPACE_HEX_CHARS // 2)


def is_store_namespace(value: str) -> bool:
    return bool(_NAMESPACE_RE.match(value))


def client_order_id(namespace: str, execution_id: str, slice_index: int, attempt: int) -> str:
    """``g<namespace>-<execution>-<slice>-<attempt>``, at most 34 characters."""
    if not is_store_namespace(namespace):
        raise ValueError(f"store namespace must be {NAMESPACE_HEX_CHARS} lowercase hex characters, "
                         f"got {namespace!r}")
    if not is_execution_id(execution_id):
        raise ValueError(f"execution id must be 12 lowercase hex characters, got {execution_id!r}")
    if not 0 <= slice_index < 100_000 or not 0 <= attempt < 1000:
        raise ValueError(f"slice index {slice_index} / attempt {attempt} out of range")
    return f"g{namespace}-{execution_id}-{slice_index}-{attempt}"


def parse_client_order_id(value: str) -> tuple[str, int, int]:
    """``(execution, slice, attempt)`` of a genesis client order id, with or without a
    namespace; ``ValueError`` for ids genesis did not make."""
    m = _CLIENT_ID_RE.match(value)
    if not m:
        raise ValueError(f"not a genesis client order id: {value!r}")
    return m.group(2), int(m.group(3)), int(m.group(4))


def client_order_namespace(value: str) -> str | None:
    """The store namespace in a genesis client order id (``None`` for an id made before
    namespaces); ``ValueError`` for ids genesis did not make."""
    m = _CLIENT_ID_RE.match(value)
    if not m:
        raise ValueError(f"not a genesis client order id: {value!r}")
    return m.group(1)
