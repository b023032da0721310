"""Deterministic identifiers.

A child order's client id is a pure function of (execution, slice, attempt), so a retry or a
restart can always find what was sent. The format fits Binance's ``newClientOrderId`` rule
``^[.A-Z:/a-z0-9_-]{1,36}$``.
"""

from __future__ import annotations

import hashlib
import re
import uuid

_CLIENT_ID_RE = re.compile(r"^g([0-9a-f]{12})-(\d{1,5})-(\d{1,3})$")
_EXEC_ID_RE = re.compile(r"^[0-9a-f]{12}$")


def new_execution_id(request_id: str | None = None) -> str:
    """12 hex characters; derived from ``request_id`` when given so a resubmission maps to the
    same execution."""
    if request_id is None:
        return uuid.uuid4().hex[:12]
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:12]


def is_execution_id(value: str) -> bool:
    return bool(_EXEC_ID_RE.match(value))


def client_order_id(execution_id: str, slice_index: int, attempt: int) -> str:
    """``g<execution>-<slice>-<attempt>``, at most 24 characters."""
    if not is_execution_id(execution_id):
        raise ValueError(f"execution id must be 12 lowercase hex characters, got {execution_id!r}")
    if not 0 <= slice_index < 100_000 or not 0 <= attempt < 1000:
        raise ValueError(f"slice index {slice_index} / attempt {attempt} out of range")
    return f"g{execution_id}-{slice_index}-{attempt}"


def parse_client_order_id(value: str) -> tuple[str, int, int]:
    """Inverse of ``client_order_id``; ``ValueError`` for ids genesis did not make."""
    m = _CLIENT_ID_RE.match(value)
    if not m:
        raise ValueError(f"not a genesis client order id: {value!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))
