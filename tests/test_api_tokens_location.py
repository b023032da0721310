"""Where the API token file lives: ``--tokens PATH`` on ``genesis run`` and ``genesis token
create``, by default ``<db>.tokens.json`` beside a SQLite database; a PostgreSQL ``--db`` has
no file beside it, so ``--tokens`` is required there (a usage error naming it, exit 2)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from genesis.cli import main
from tests.test_api_daemon import free_port
from tests.test_daemon_process import READY_TIMEOUT, wait_for
from tests.test_postgres_daemon import PgDaemon

PG = "postgresql+psycopg://genesis@127.0.0.1:5432/genesis"  # never connected to by these commands


def test_token_create_on_postgresql_without_tokens_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(main, ["token", "create", "--role", "read", "--db", PG])
    assert result.exit_code == 2, result.output
    assert "--tokens" in result.stderr and "Traceback" not in result.output


def test_token_create_writes_the_file_given_with_tokens(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens.json"
    result = CliRunner().invoke(main, ["token", "create", "--role", "trader", "--db", PG, "--tokens", str(path)])
    assert result.exit_code == 0, result.output
    entries = json.loads(path.read_text())["tokens"]
    assert result.stdout.strip() in [e["token"] for e in entries if e["role"] == "trader"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"trader token added to {path}" in result.stderr


def test_token_create_defaults_to_the_file_beside_a_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "genesis.db"
    result = CliRunner().invoke(main, ["token", "create", "--role", "read", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() in (tmp_path / "genesis.db.tokens.json").read_text()


def test_run_with_http_on_postgresql_without_tokens_is_a_usage_error_naming_it() -> None:
    result = CliRunner().invoke(main, ["run", "--http", "127.0.0.1:8780", "--db", PG])
    assert result.exit_code == 2, result.output
    assert "--tokens" in result.stderr and "Traceback" not in result.output


def test_run_refuses_tokens_without_http(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--tokens", str(tmp_path / "t.json"), "--db", str(tmp_path / "g.db")])
    assert result.exit_code == 2 and "--tokens" in result.stderr


@pytest.mark.slow
def test_the_daemon_serves_the_api_and_dashboard_on_postgresql(pg_url: URL, tmp_path: Path) -> None:
    port, tokens = free_port(), tmp_path / "api-tokens.json"
    daemon = PgDaemon(pg_url, tmp_path, args=("--http", f"127.0.0.1:{port}", "--tokens", str(tokens)))
    try:
        wait_for(daemon.ready, "daemon_ready", READY_TIMEOUT)
        read = next(e["token"] for e in json.loads(tokens.read_text())["tokens"] if e["role"] == "read")

        def get(path: str) -> tuple[int, object]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {read}"})
                response = conn.getresponse()
                return response.status, json.loads(response.read())
            finally:
                conn.close()

        assert get("/v1/executions")[0] == 200
        assert get("/v1/whoami") == (200, {"role": "read"})
        status, body = get("/v1/executions/nosuchexecution/market")  # read through PostgreSQL
        assert status == 404 and "no started execution" in json.dumps(body)
    finally:
        daemon.proc.terminate()
        assert daemon.proc.wait(30) == 0, daemon.log_text()[-3000:]
