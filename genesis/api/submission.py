"""A submission as a JSON object (the API's request body, a line of ``genesis submit --file``)
turned into a validated ``SubmitRequest``, or an ``ApiError`` naming the field and the fix.

No web framework here: the CLI imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping

from genesis.config import RuntimeConfig
from genesis.domain.instrument import Instrument
from genesis.requests import ALGOS, URGENCIES, RequestError, SubmitRequest, validate_submit

MAX_FILE_ORDERS = 10_000

# field -> (expected JSON types, how to fix a bad value)
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "symbol": ((str,), 'a known unified symbol, e.g. "BTC/USDT"'),
    "side": ((str,), 'use "buy" or "sell"'),
    "qty": ((str, int, Decimal), 'a positive quantity on the symbol\'s step size, e.g. "2.5"'),
    "algo": ((str,), f"one of: {', '.join(ALGOS)}"),
    "duration": ((str, int), 'a window like "15m", "900s" or "4h", or whole seconds'),
    "slices": ((int,), "a whole number of slices between 1 and 10000, for the algos that take a slice count "
                       "(the error names them); omit it for the others"),
    "limit_price": ((str, int, Decimal), 'a positive price on the symbol\'s tick size, e.g. "108000.5"'),
    "urgency": ((str,), f"vwap and is; one of: {', '.join(URGENCIES)}"),
    "client_request_id": ((str,), "1-128 characters from A-Z a-z 0-9 . _ : -"),
    "account": ((str,), "a venue account a daemon holds (see GET /v1/status); omit for the taking daemon's own"),
}
REQUIRED = ("symbol", "side", "qty")


@dataclass(frozen=True)
class ApiError(Exception):
    """A refusal: HTTP ``status``, a one-line ``error``, the ``field`` at fault and the ``fix``."""

    status: int
    error: str
    field: str | None = None
    fix: str | None = None

    def body(self) -> dict[str, str | None]:
        return {"error": self.error, "field": self.field, "fix": self.fix}

    def __str__(self) -> str:
        return self.error


def parse_json(raw: bytes | str) -> Any:
    """JSON with exact decimals (``2.675`` stays ``Decimal("2.675")``), or ``ApiError`` 400."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {str(exc)[:120]}", "body",
                       "send one JSON object with Content-Type: application/json") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def submission(body: Any, instruments: Mapping[str, Instrument], config: RuntimeConfig) -> SubmitRequest:
    """Validate one submission object exactly as ``genesis submit`` does (``validate_submit``)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the submission must be a JSON object", "body",
                       'send e.g. {"symbol": "BTC/USDT", "side": "buy", "qty": "2.5"}')
    fields = submission_fields()
    for name, value in body.items():
        if name not in fields:
            raise ApiError(400, f"unknown field {str(name)[:64]!r}", str(name)[:64],
                           f"remove it; the fields are: {', '.join(fields)}")
        types, fix = fields[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise ApiError(400, f"{name}: {type(value).__name__} is not accepted here", name, fix)
    for name in REQUIRED:
        if body.get(name) is None:
            raise ApiError(400, f"{name}: required", name, FIELDS[name][1])
    try:
        return validate_submit(
            symbol=body["symbol"], side=body["side"], qty=body["qty"], algo=body.get("algo") or "twap",
            duration=body.get("duration"), slices=body.get("slices"), limit_price=body.get("limit_price"),
            request_id=body.get("client_request_id"), instruments=instruments, config=config,
            urgency=body.get("urgency"), account=body.get("account"),
            options={name: str(body[name]) for name in fields if name not in FIELDS and body.get(name) is not None})
    except RequestError as exc:
        field = api_field(exc.field)
        fix = fields[field][1] if field in fields else "see GET /v1/openapi.json"
        raise ApiError(422, f"{field}: {str(exc).split(': ', 1)[1]}", field, fix) from None


def submission_fields() -> dict[str, tuple[tuple[type, ...], str]]:
    """``FIELDS`` plus every algorithm's own options (POV's ``participation``...), as the CLI's
    ``genesis submit`` takes them; an option's value is a decimal string or a JSON number."""
    from genesis.algorithms.registry import submit_options

    return {**FIELDS, **{o.name: ((str, int, Decimal), o.help) for o in submit_options()}}


def api_field(request_field: str) -> str:
    """``validate_submit``'s field name as the API spells it (``id`` is ``client_request_id``)."""
    return "client_request_id" if request_field == "id" else request_field


def submissions_from_lines(lines: Iterable[str], instruments: Mapping[str, Instrument],
                           config: RuntimeConfig) -> list[SubmitRequest]:
    """Every non-blank line a submission object; all valid, or ``ApiError`` naming the first bad
    line (``line N: field: ...``). Nothing is stored here."""
    out: list[SubmitRequest] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(out) >= MAX_FILE_ORDERS:
            raise ApiError(413, f"line {number}: more than {MAX_FILE_ORDERS} orders in one file", None,
                           "split the file")
        try:
            out.append(submission(parse_json(line), instruments, config))
        except ApiError as exc:
            raise ApiError(exc.status, f"line {number}: {exc.error}", exc.field, exc.fix) from None
    if not out:
        raise ApiError(400, "the file has no orders", "file", "one JSON object per line")
    return out
