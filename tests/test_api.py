"""The HTTP API in process (aiohttp test server, no daemon): auth, idempotent submission
through the command inbox, field-naming refusals, body bound, controls; the token file and
``genesis submit --file``."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from genesis.api.access import StoreAccess
from genesis.api.app import MAX_BODY_BYTES, ApiDeps, build_app
from genesis.api.tokens import TokenBook, ensure_token_file, token_path
from genesis.cli import main
from genesis.config import RuntimeConfig
from genesis.venue.instruments import SIM_INSTRUMENTS

ORDER = {"symbol": "BTC/USDT", "side": "buy", "qty": "2.5", "duration": "15m"}


class Api:
    def __init__(self, client: TestClient, db: Path, tokens: dict[str, str]):
        self.client, self.db, self.tokens = client, db, tokens

    def auth(self, role: str = "trader") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def post(self, path: str, body: object, role: str = "trader"):  # type: ignore[no-untyped-def]
        return await self.client.post(path, json=body, headers=self.auth(role))

    def commands(self) -> list[tuple]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT kind, execution_id, request_id, payload FROM commands ORDER BY command_id").fetchall()


@pytest.fixture
async def api(db_path: Path) -> AsyncIterator[Api]:
    tokens = {t.role: t.token for t in ensure_token_file(token_path(db_path))}
    deps = ApiDeps(StoreAccess(db_path), TokenBook(token_path(db_path)), lambda: SIM_INSTRUMENTS, RuntimeConfig, lambda: True)
    async with TestClient(TestServer(build_app(deps))) as client:
        yield Api(client, db_path, tokens)


async def test_token_file_is_private_with_one_token_per_role(api: Api) -> None:
    path = token_path(api.db)
    assert path.name == "genesis.db.tokens.json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(e["role"] for e in json.loads(path.read_text())["tokens"]) == ["read", "trader"]
    assert ensure_token_file(token_path(api.db)) == []  # an existing file is left alone


async def test_missing_or_wrong_token_is_401_and_read_token_cannot_post(api: Api) -> None:
    r = await api.client.get("/v1/executions")
    assert r.status == 401 and (await r.json())["field"] == "Authorization"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await api.client.get("/v1/executions", headers={"Authorization": "Bearer gen_nope"})
    assert r.status == 401
    r = await api.post("/v1/executions", ORDER, role="read")
    assert r.status == 403 and "trader" in (await r.json())["fix"]
    assert api.commands() == []
    r = await api.client.get("/v1/executions", headers=api.auth("read"))
    assert r.status == 200 and (await r.json()) == {"executions": []}
    assert (await api.client.get("/healthz")).status == 200  # probes need no token


async def test_resubmitting_a_client_request_id_returns_the_same_execution_and_stores_one_command(api: Api) -> None:
    first = await api.post("/v1/executions", {**ORDER, "client_request_id": "desk-1"})
    again = await api.post("/v1/executions", {**ORDER, "qty": "2.50", "client_request_id": "desk-1"})
    assert (first.status, again.status) == (202, 200)
    a, b = await first.json(), await again.json()
    assert a["execution_id"] == b["execution_id"] and (a["created"], b["created"]) == (True, False)
    assert [(k, e) for k, e, _r, _p in api.commands()] == [("submit", a["execution_id"])]
    r = await api.client.get(f"/v1/executions/{a['execution_id']}", headers=api.auth("read"))
    assert (await r.json())["state"] == "queued"


async def test_cli_and_api_with_the_same_id_make_one_execution(api: Api) -> None:
    result = CliRunner().invoke(main, ["submit", "--db", str(api.db), "--symbol", "BTC/USDT", "--side", "buy",
                                       "--qty", "2.5", "--duration", "15m", "--id", "both-doors"])
    assert result.exit_code == 0, result.output
    r = await api.post("/v1/executions", {**ORDER, "client_request_id": "both-doors"})
    assert r.status == 200 and (await r.json())["execution_id"] == result.output.strip()
    assert len(api.commands()) == 1


async def test_reusing_an_id_for_a_different_order_is_409(api: Api) -> None:
    await api.post("/v1/executions", {**ORDER, "client_request_id": "x1"})
    r = await api.post("/v1/executions", {**ORDER, "qty": "3", "client_request_id": "x1"})
    body = await r.json()
    assert r.status == 409 and body["field"] == "client_request_id" and "different order" in body["error"]
    assert len(api.commands()) == 1


@pytest.mark.parametrize("change, status, field", [
    ({"side": "hold"}, 422, "side"),
    ({"qty": "-1"}, 422, "qty"),
    ({"qty": "2.55555555"}, 422, "qty"),
    ({"symbol": "DOGE/EUR"}, 422, "symbol"),
    ({"duration": "1y"}, 422, "duration"),
    ({"limit_price": "1.0001"}, 422, "limit_price"),
    ({"client_request_id": "no spaces"}, 422, "client_request_id"),
    ({"urgency": "high"}, 422, "urgency"),
    ({"quantity": "1"}, 400, "quantity"),
    ({"qty": True}, 400, "qty"),
    ({"slices": "3"}, 400, "slices"),
    ({"symbol": None}, 400, "symbol"),
])
async def test_validation_errors_name_the_field(api: Api, change: dict, status: int, field: str) -> None:
    r = await api.post("/v1/executions", {**ORDER, **change})
    body = await r.json()
    assert (r.status, body["field"]) == (status, field), body
    assert body["error"] and body["fix"]
    assert api.commands() == []


@pytest.mark.parametrize("algo, own", [("vwap", {}), ("pov", {"participation": "0.05"}), ("is", {})])
async def test_a_slice_count_for_an_algo_that_slices_by_its_own_interval_is_422(api: Api, algo: str, own: dict) -> None:
    r = await api.post("/v1/executions", {**ORDER, **own, "algo": algo, "slices": 10})
    body = await r.json()
    assert (r.status, body["field"]) == (422, "slices"), body
    assert f"{algo} takes no slice count" in body["error"] and "twap" in body["error"] and body["fix"]
    assert api.commands() == []
    assert (await api.post("/v1/executions", {**ORDER, "algo": "twap", "slices": 10})).status == 202


async def test_not_json_or_not_an_object_is_400_naming_the_body(api: Api) -> None:
    for raw in (b"{", b"[1, 2]", b"NaN", b"\xff"):
        r = await api.client.post("/v1/executions", data=raw, headers=api.auth())
        assert (r.status, (await r.json())["field"]) == (400, "body"), raw


async def test_a_body_over_the_bound_is_413_and_stores_nothing(api: Api) -> None:
    big = {**ORDER, "client_request_id": "big", "symbol": "B" * MAX_BODY_BYTES}
    r = await api.post("/v1/executions", big)
    assert r.status == 413 and (await r.json())["field"] == "body"

    async def chunks():  # no Content-Length: the bound holds while reading
        for _ in range(80):
            yield b" " * 1024
    r = await api.client.post("/v1/executions", data=chunks(), headers=api.auth())
    assert r.status == 413
    assert api.commands() == []


async def test_controls_go_through_the_inbox_and_unknown_executions_are_404(api: Api) -> None:
    execution_id = (await (await api.post("/v1/executions", ORDER)).json())["execution_id"]
    r = await api.post(f"/v1/executions/{execution_id}/pause", None)
    assert r.status == 202 and (await r.json())["requested"] == "pause"
    r = await api.post(f"/v1/executions/{execution_id}/urgency", {"urgency": "warp"})
    assert r.status == 422 and (await r.json())["field"] == "urgency"
    assert (await api.post("/v1/executions/nope/cancel", None)).status == 404
    assert (await api.client.get("/v1/executions/nope/events", headers=api.auth())).status == 404
    assert [k for k, *_ in api.commands()] == ["submit", "pause"]
    r = await api.client.get(f"/v1/executions/{execution_id}/events?limit=0", headers=api.auth())
    assert r.status == 400 and (await r.json())["field"] == "limit"


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    r = await api.client.get("/v1/nothing", headers=api.auth())
    assert r.status == 404 and "error" in await r.json()
    r = await api.client.delete("/v1/executions", headers=api.auth())
    assert r.status == 405 and "error" in await r.json()


async def test_a_token_created_by_the_cli_works_at_once(api: Api) -> None:
    result = CliRunner().invoke(main, ["token", "create", "--db", str(api.db), "--role", "read"])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip().splitlines()[0]
    r = await api.client.get("/v1/executions", headers={"Authorization": f"Bearer {new}"})
    assert r.status == 200
    assert os.stat(token_path(api.db)).st_mode & 0o777 == 0o600


def test_submit_file_is_all_or_nothing(db_path: Path, tmp_path: Path) -> None:
    good = [{**ORDER, "client_request_id": f"f{i}"} for i in range(3)]
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text("\n".join(json.dumps(o) for o in [*good[:2], {**ORDER, "qty": "zero"}, good[2]]) + "\n")
    result = CliRunner().invoke(main, ["submit", "--db", str(db_path), "--file", str(bad_file)])
    assert result.exit_code == 2 and "line 3: qty" in result.output and "nothing was stored" in result.output
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM commands").fetchone() == (0,)

    good_file = tmp_path / "good.jsonl"
    good_file.write_text("\n".join(json.dumps(o) for o in [*good, good[0]]) + "\n\n")
    result = CliRunner().invoke(main, ["submit", "--db", str(db_path), "--file", str(good_file)])
    assert result.exit_code == 0, result.output
    ids = result.stdout.split()
    assert len(ids) == 4 and ids[3] == ids[0] and len(set(ids)) == 3
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM commands").fetchone() == (3,)


def test_submit_file_refuses_other_order_options(db_path: Path, tmp_path: Path) -> None:
    orders = tmp_path / "o.jsonl"
    orders.write_text(json.dumps(ORDER) + "\n")
    result = CliRunner().invoke(main, ["submit", "--db", str(db_path), "--file", str(orders), "--qty", "1"])
    assert result.exit_code == 2 and "--file" in result.output
    result = CliRunner().invoke(main, ["submit", "--db", str(db_path), "--side", "buy"])
    assert result.exit_code == 2 and "--symbol" in result.output


async def test_concurrent_submissions_store_each_order_once_and_refuse_only_the_reused_id(api: Api) -> None:
    import asyncio

    await api.post("/v1/executions", {**ORDER, "client_request_id": "taken"})
    bodies = [{**ORDER, "client_request_id": f"c{i}"} for i in range(30)]
    bodies += [{**ORDER, "client_request_id": "same"}] * 10 + [{**ORDER, "qty": "9", "client_request_id": "taken"}]
    answers = await asyncio.gather(*(api.post("/v1/executions", b) for b in bodies))
    statuses = [r.status for r in answers]
    assert statuses[:30] == [202] * 30 and statuses[-1] == 409
    same = [await r.json() for r in answers[30:40]]
    assert len({s["execution_id"] for s in same}) == 1 and sum(s["created"] for s in same) == 1
    assert len(api.commands()) == 1 + 30 + 1


def test_the_cli_parts_of_the_api_do_not_load_the_web_stack() -> None:
    import subprocess
    import sys

    code = ("import sys, genesis.cli, genesis.api.submission, genesis.api.tokens, genesis.api.address; "
            "print(sorted(m for m in sys.modules if m.startswith('aiohttp')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:http", "example.com:8780", ""])
def test_a_bad_http_address_is_refused_naming_the_option(db_path: Path, address: str) -> None:
    result = CliRunner().invoke(main, ["run", "--db", str(db_path), "--http", address])
    assert result.exit_code == 2 and "--http" in result.output


async def test_an_algorithms_own_options_are_taken_as_the_cli_takes_them(api: Api) -> None:
    pov = {**ORDER, "algo": "pov", "participation": "0.05", "client_request_id": "pov-1"}
    del pov["duration"]
    r = await api.post("/v1/executions", pov)
    assert r.status == 202, await r.json()
    ((kind, _eid, _r, payload),) = api.commands()
    assert kind == "submit" and '"participation": "0.05"' in payload and '"algo": "pov"' in payload
    r = await api.post("/v1/executions", {**pov, "participation": None, "client_request_id": "pov-2"})
    body = await r.json()
    assert (r.status, body["field"]) == (422, "participation"), body  # required by POV
    r = await api.post("/v1/executions", {**ORDER, "participation": "0.05", "client_request_id": "twap-1"})
    assert r.status == 422 and (await r.json())["field"] == "participation"  # not a TWAP option
    assert len(api.commands()) == 1
    doc = await (await api.client.get("/v1/openapi.json")).json()
    assert "participation" in doc["components"]["schemas"]["Submission"]["properties"]
