"""The HTTP API of a real daemon (``genesis run --http``, simulated venue, scaled clock): the
token file it creates, the live SSE stream, a pause through the API, and the schemathesis
fuzzer against the OpenAPI document it serves (no 5xx, responses as documented, and nothing
half-stored in the command inbox afterwards).

One daemon serves the whole module; every wait is a poll with a generous deadline.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from genesis.api.tokens import token_path
from genesis.config import RuntimeConfig
from genesis.domain.ids import is_execution_id
from genesis.requests import RequestError, validate_submit
from genesis.store.inbox import CONTROL_KINDS
from genesis.venue.instruments import SIM_INSTRUMENTS
from tests.test_daemon_process import CALM, DaemonProcess, Workspace, wait_for

pytestmark = pytest.mark.slow
STREAM_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveApi:
    def __init__(self, ws: Workspace, daemon: DaemonProcess, port: int):
        self.ws, self.daemon, self.port = ws, daemon, port
        self.url = f"http://127.0.0.1:{port}"
        entries = json.loads(token_path(ws.db).read_text())["tokens"]
        self.tokens = {e["role"]: e["token"] for e in entries}

    def auth(self, role: str = "trader") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, method: str, path: str, body: Any = None, role: str = "trader") -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={**self.auth(role), "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def submit(self, **fields: Any) -> str:
        status, body = self.call("POST", "/v1/executions",
                                 {"symbol": "BTC/USDT", "side": "buy", "qty": "0.5", "duration": "15m", **fields})
        assert status in (200, 202), body
        return str(body["execution_id"])


@contextmanager
def live_daemon(root: Path, speed: str = CALM) -> Iterator[LiveApi]:
    """A daemon with ``--http`` on a fresh workspace under ``root``, stopped cleanly at the end."""
    ws = Workspace(root)
    port = free_port()
    daemon = ws.daemon("--http", f"127.0.0.1:{port}", speed=speed)
    try:
        daemon.wait_ready()
        yield LiveApi(ws, daemon, port)
        assert daemon.stop() == 0, daemon.tail()
    finally:
        daemon.kill()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_daemon(tmp_path_factory.mktemp("api")) as api:
        yield api


def test_first_start_creates_a_private_token_file_with_a_trader_and_a_read_token(live: LiveApi) -> None:
    path = token_path(live.ws.db)
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(live.tokens) == ["read", "trader"]
    status, body = live.call("GET", "/readyz")
    assert status == 200 and body["checks"]["commands"]["ok"] and body["checks"]["store"]["ok"]
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    conn.request("GET", "/metrics")
    metrics = conn.getresponse()
    assert metrics.status == 200 and b"genesis_" in metrics.read()
    conn.close()


def test_the_stream_delivers_a_slice_event_of_a_running_execution(live: LiveApi) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=STREAM_TIMEOUT)
    conn.request("GET", "/v1/stream?types=TwapSliceExecuted,ExecutionSubmitted", headers=live.auth("read"))
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    execution_id = live.submit(client_request_id="stream-1")
    seen: list[str] = []
    deadline = time.monotonic() + STREAM_TIMEOUT
    try:
        while time.monotonic() < deadline:
            line = response.fp.readline().decode()
            if not line.startswith("data: "):
                continue
            message = json.loads(line[6:])
            if message["execution_id"] != execution_id:
                continue
            seen.append(message["event_type"])
            if message["event_type"] == "TwapSliceExecuted":
                assert Decimal(message["data"]["filled_qty"]) >= 0 and message["data"]["slice_index"] >= 0
                break
    finally:
        conn.close()
    assert seen[0] == "ExecutionSubmitted" and seen[-1] == "TwapSliceExecuted", seen


def test_pause_through_the_api_ends_as_paused_in_the_database(live: LiveApi) -> None:
    execution_id = live.submit(duration="30m", client_request_id="pause-1")
    live.daemon.wait(lambda: live.ws.state(execution_id) == "running", "the execution to run")
    status, body = live.call("POST", f"/v1/executions/{execution_id}/pause")
    assert status == 202 and body["requested"] == "pause"
    live.daemon.wait(lambda: live.ws.state(execution_id) == "paused", "state paused in the database")
    assert live.call("GET", f"/v1/executions/{execution_id}", role="read")[1]["state"] == "paused"
    status, body = live.call("GET", f"/v1/executions/{execution_id}/events", role="read")
    assert status == 200 and "ExecutionPaused" in [e["event_type"] for e in body["events"]]
    assert live.call("POST", f"/v1/executions/{execution_id}/cancel")[0] == 202
    live.daemon.wait(lambda: live.ws.state(execution_id) == "cancelled", "state cancelled in the database")
    assert live.call("POST", f"/v1/executions/{execution_id}/resume")[0] == 409


FUZZ_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_fuzzed_requests_get_no_5xx_and_documented_answers(live: LiveApi) -> None:
    """schemathesis, from Python: every operation of the served document but the endless
    stream, positive and negative cases, a modest number of examples each."""
    schema = schemathesis.openapi.from_url(f"{live.url}/v1/openapi.json").exclude(path="/v1/stream")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=live.auth("trader"), timeout=30, checks=FUZZ_CHECKS)
            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (an operation without input)
                assert mode is GenerationMode.NEGATIVE, operation.label


def test_after_fuzzing_every_command_is_a_valid_submission_or_control(live: LiveApi) -> None:
    rows = live.ws.rows("SELECT kind, execution_id, payload FROM commands")
    assert rows
    submitted = set()
    config = RuntimeConfig()
    for row in rows:
        payload = json.loads(row["payload"])
        assert is_execution_id(row["execution_id"]), dict(row)
        if row["kind"] == "submit":
            try:
                validate_submit(symbol=payload["symbol"], side=payload["side"], qty=payload["qty"],
                                algo=payload["algo"], duration=payload["duration_seconds"],
                                slices=payload["slice_count"], limit_price=payload["limit_price"],
                                request_id=payload["request_id"], instruments=SIM_INSTRUMENTS, config=config,
                                urgency=payload.get("urgency"))
            except RequestError as exc:
                pytest.fail(f"stored an invalid submission {dict(row)}: {exc}")
            submitted.add(row["execution_id"])
        else:
            assert row["kind"] in CONTROL_KINDS and row["execution_id"] in submitted, dict(row)
    wait_for(lambda: not live.ws.rows("SELECT 1 FROM commands WHERE processed_at IS NULL"),
             "the daemon to settle every command")


def test_a_port_already_taken_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = ws.daemon("--http", f"127.0.0.1:{taken.getsockname()[1]}")
        try:
            code = daemon.proc.wait(60)
        finally:
            daemon.kill()
    assert code == 1 and "cannot listen" in daemon.log_text(), daemon.tail()
