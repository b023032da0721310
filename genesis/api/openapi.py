"""The OpenAPI 3 document of the API, served at ``/v1/openapi.json`` (hand-written: it is the
contract, and ``tests/test_api_fuzz.py`` fuzzes the running daemon against it)."""

from __future__ import annotations

import copy
from typing import Any, Sequence

from genesis.requests import ALGOS, URGENCIES

_S = {"type": "string"}
_NS = {"type": "string", "nullable": True}
_NUM = {"type": "number"}
_NNUM = {"type": "number", "nullable": True}
_NINT = {"type": "integer", "nullable": True}


def _amount(pattern: str, example: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "pattern": pattern, "example": example}, {"type": "number", "minimum": 0}]}



SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "field", "fix"],
        "properties": {"error": _S, "field": _NS, "fix": _NS},
    },
    "Submission": {
        "type": "object", "additionalProperties": False, "required": ["symbol", "side", "qty"],
        "properties": {
            "symbol": {"type": "string", "example": "BTC/USDT", "maxLength": 32},  # enum: the venue's
            "side": {"type": "string", "enum": ["buy", "sell"]},
            "qty": {**_amount(r"^[0-9]{1,4}(\.[0-9]{1,5})?$", "2.5"),
                    "description": "base quantity on the symbol's step, a decimal string (a JSON number is read exactly)"},
            "algo": {"type": "string", "enum": list(ALGOS), "default": "twap"},
            "duration": {"anyOf": [{"type": "string", "pattern": r"^[0-9]{1,6}[smhd]?$", "example": "15m"},
                                   {"type": "integer", "minimum": 60, "maximum": 86400}],
                         "description": "window: 900s, 15m, 4h, or whole seconds (default from the config)"},
            "slices": {"type": "integer", "minimum": 1, "maximum": 10000,
                       "description": "twap only (vwap, pov and is slice by their own configured interval)"},
            "limit_price": {**_amount(r"^[0-9]{1,6}(\.[0-9]{1,2})?$", "108000.5"),
                            "description": "worst price for every child order, on the symbol's tick"},
            "urgency": {"type": "string", "enum": list(URGENCIES), "description": "vwap and is"},
            "client_request_id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$",
                                  "description": "idempotency key: the same id returns the same execution "
                                                 "(the CLI's --id)"},
            "account": {"type": "string", "minLength": 1, "maxLength": 200,
                        "description": "the venue account to trade on, one a daemon holds (the CLI's "
                                       "--account); omitted: the account of the daemon that takes it"},
        },
    },
    "Submitted": {
        "type": "object", "required": ["execution_id", "created", "state_url"],
        "properties": {"execution_id": _S, "client_request_id": _NS, "created": {"type": "boolean"},
                       "state_url": _S},
    },
    "Execution": {
        "type": "object", "required": ["execution_id", "state"],
        "description": "as `genesis status --json`; a submission the daemon has not taken yet is "
                       "`queued`, one it refused `rejected` (with `detail`)",
        "properties": {
            "execution_id": _S, "state": _S, "algo": _NS, "symbol": _NS, "side": _NS,
            "target_qty": _NS, "filled_qty": _NS, "remaining_qty": _NS, "progress_pct": _NUM,
            "avg_price": _NS, "arrival_price": _NS, "implementation_shortfall_bps": _NS,
            "slices_done": _NINT, "slice_count": _NINT, "fees_usdt": _NS, "submitted_at": _NS,
            "started_at": _NS, "end_at": _NS, "ended_at": _NS, "paused_seconds": _NNUM,
            "completion_reason": _NS, "urgency": _NS, "slippage_vs_vwap_bps": _NS, "market_price": _NS,
            "market_vwap": _NS, "participation_avg": _NS, "participation_max": _NS,
            "time_remaining_seconds": _NNUM, "as_of": _NS, "detail": _NS,
            "held_since": _NS, "hold_reason": _NS, "held_seconds": _NNUM,
        },
    },
    "ExecutionList": {
        "type": "object", "required": ["executions"],
        "properties": {"executions": {"type": "array", "items": {"$ref": "#/components/schemas/Execution"}}},
    },
    "EventList": {
        "type": "object", "required": ["execution_id", "events"],
        "properties": {"execution_id": _S, "events": {"type": "array", "items": {
            "type": "object", "required": ["sequence_number", "event_type", "version", "occurred_at", "data"],
            "properties": {"sequence_number": {"type": "integer"}, "event_type": _S, "version": {"type": "integer"},
                           "occurred_at": _S, "data": {"type": "object"}}}}},
    },
    "ControlRequested": {
        "type": "object", "required": ["execution_id", "requested", "command_id"],
        "properties": {"execution_id": _S, "requested": {"type": "string", "enum": ["pause", "resume", "cancel",
                                                                                    "urgency"]},
                       "command_id": {"type": "integer"}, "urgency": _S},
    },
    "Probe": {"type": "object", "description": "/healthz: {status, pid}; /readyz: {ready, checks: {name: {ok, detail}}}"},
    "MarketView": {"type": "object", "description": "the dashboard's chart data of one execution: candles, the "
                   "cumulative market VWAP, fills with our running average, the window VWAP and our slippage "
                   "against it (amounts as decimal strings; docs/dashboard.md)"},
    "Role": {"type": "object", "required": ["role"],
             "properties": {"role": {"type": "string", "enum": ["read", "trader"]}}},
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": _json(schema)}


_AUTH = {"401": _answer("missing or unknown token")}
_WRITE = {**_AUTH, "403": _answer("a read token cannot change anything"), "413": _answer("body over 64 KiB")}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "execution id"}


def _control(kind: str, what: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": what, "operationId": f"{kind}Execution", "parameters": [_ID],
        "responses": {"202": _answer("durably requested; the daemon applies it", "ControlRequested"),
                      "400": _answer("malformed body"), "404": _answer("no such execution"),
                      "409": _answer("the execution has ended"), **_WRITE},
    }
    if kind == "urgency":
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["urgency"], "properties": {
                "urgency": {"type": "string", "enum": list(URGENCIES)}}}}}}
        op["responses"]["422"] = _answer("not an urgency")
    return {"post": op}


def openapi_document(symbols: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.0 document (a fresh dict each call); ``symbols``: the venue's, listed as
    the submission's ``symbol`` values."""
    from genesis.algorithms.registry import submit_options

    schemas = copy.deepcopy(SCHEMAS)
    for option in submit_options():  # each algorithm's own options (POV's participation...)
        schemas["Submission"]["properties"][option.name] = {
            **_amount(r"^[0-9]{1,4}(\.[0-9]{1,8})?$", "0.05"), "description": option.help}
    if symbols:
        schemas["Submission"]["properties"]["symbol"]["enum"] = sorted(symbols)
    int_query = lambda name, low, high, text: {  # noqa: E731
        "name": name, "in": "query", "required": False, "description": text,
        "schema": {"type": "integer", "minimum": low, "maximum": high}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "genesis execution daemon", "version": "1",
                 "description": "Parent orders in, child orders out. Bearer tokens from <db>.tokens.json: "
                                "`read` for GET, `trader` also for POST. See docs/api.md."},
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "the process serves", "operationId": "health", "security": [],
                                 "responses": {"200": _answer("alive", "Probe")}}},
            "/readyz": {"get": {"summary": "the daemon takes commands", "operationId": "ready", "security": [],
                                "responses": {"200": _answer("ready", "Probe"),
                                              "503": _answer("starting or stopping", "Probe")}}},
            "/v1/executions": {
                "get": {"summary": "executions, oldest first", "operationId": "listExecutions",
                        "parameters": [int_query("limit", 1, 1000, "at most this many (the newest)"),
                                       {"name": "state", "in": "query", "required": False,
                                        "schema": {"type": "string"}, "description": "only this state"}],
                        "responses": {"200": _answer("executions", "ExecutionList"),
                                      "400": _answer("bad query"), **_AUTH}},
                "post": {"summary": "submit a parent order", "operationId": "submitExecution",
                         "requestBody": {"required": True, "content": _json("Submission")},
                         "responses": {"202": _answer("durably queued", "Submitted"),
                                       "200": _answer("this client_request_id was submitted before", "Submitted"),
                                       "400": _answer("malformed body"), "409": _answer(
                                           "client_request_id used for a different order"),
                                       "422": _answer("invalid order (the field says which)"), **_WRITE}},
            },
            "/v1/executions/{id}": {"get": {
                "summary": "one execution", "operationId": "getExecution", "parameters": [_ID],
                "responses": {"200": _answer("the execution", "Execution"), "404": _answer("no such execution"),
                              **_AUTH}}},
            "/v1/executions/{id}/events": {"get": {
                "summary": "the event log of one execution", "operationId": "executionEvents",
                "parameters": [_ID, int_query("after", 0, 2**62, "only events after this sequence number"),
                               int_query("limit", 1, 10000, "at most this many")],
                "responses": {"200": _answer("events, in commit order", "EventList"),
                              "400": _answer("bad query"), "404": _answer("no such execution"), **_AUTH}}},
            "/v1/executions/{id}/market": {"get": {
                "summary": "the dashboard's chart data of one started execution", "operationId": "executionMarket",
                "parameters": [_ID],
                "responses": {"200": _answer("the chart data", "MarketView"),
                              "404": _answer("no started execution"), **_AUTH}}},
            "/v1/whoami": {"get": {
                "summary": "the role of the token presented", "operationId": "whoami",
                "responses": {"200": _answer("the role", "Role"), **_AUTH}}},
            "/v1/executions/{id}/pause": _control("pause", "pause (no child order while paused)"),
            "/v1/executions/{id}/resume": _control("resume", "resume a paused execution"),
            "/v1/executions/{id}/cancel": _control("cancel", "cancel (open child orders are cancelled)"),
            "/v1/executions/{id}/urgency": _control("urgency", "change a running VWAP's pace"),
            "/v1/stream": {"get": {
                "summary": "committed events as Server-Sent Events (event: type, data: JSON)",
                "operationId": "stream",
                "parameters": [{"name": "execution_id", "in": "query", "required": False, "schema": _S},
                               {"name": "types", "in": "query", "required": False, "schema": _S,
                                "description": "comma-separated event types, e.g. TwapSliceExecuted"},
                               {"name": "access_token", "in": "query", "required": False, "schema": _S,
                                "description": "the token, for clients that cannot send headers (EventSource)"}],
                "responses": {"200": {"description": "the stream", "content": {"text/event-stream": {
                    "schema": {"type": "string"}}}}, "404": _answer("no event bus"), **_AUTH}}},
        },
    }
