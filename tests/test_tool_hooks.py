"""Test, chaos and bench hooks enter the engine as injected objects that do nothing by default:
kill points only through ``genesis run --kill-point``, the decision timer through the engine's
hooks, the paper exchange's clock only with ``--paper-clock``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.domain import events as ev
from genesis.engine.hooks import EngineHooks
from genesis.engine.killpoints import KillPoints
from tests.harness import harness

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"


def genesis_process(args: list[str], cwd: Path, timeout: float = 120,  # type: ignore[type-arg]
                    **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "GENESIS_DB")}
    full_env.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "genesis", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_kill_point_in_the_environment_arms_nothing(tmp_path: Path) -> None:
    """The engine reads no kill point from its environment: a backtest (the real runner and
    slice worker) with the variable the chaos harness once used runs to its end."""
    done = genesis_process(["backtest", "--candles", str(SAMPLE), "--symbol", "BTC/USDT", "--side", "buy",
                            "--qty", "0.5", "--algo", "twap", "--start", "2025-06-10T08:00:00Z",
                            "--duration", "10m", "--json"], tmp_path, GENESIS_KILL_POINT="after_intent")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["state"] == "completed"


def test_an_armed_kill_point_kills_at_its_count_and_an_unarmed_one_never() -> None:
    code = ("from genesis.engine.killpoints import KillPoints, NO_KILL_POINTS\n"
            "for _ in range(3): NO_KILL_POINTS.reach('after_send')\n"
            "k = KillPoints.parse('after_send:2')\n"
            "k.reach('after_intent'); k.reach('after_send'); print('first', flush=True)\n"
            "k.reach('after_send'); print('second', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL and done.stdout == "first\n", done.stderr


@pytest.mark.parametrize("spec, message", [("nowhere", "kill point 'nowhere' is not one of"),
                                           ("after_send:0", "kill point count '0' is not a whole number")])
def test_a_bad_kill_point_is_refused_in_one_line(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KillPoints.parse(spec)
    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "g.db"), "--kill-point", spec])
    assert result.exit_code == 2 and "--kill-point" in result.output and message in result.output
    assert not (tmp_path / "g.db").exists()


def test_paper_clock_needs_an_exchange_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "g.db"), "--venue", "ccxt:binance",
                                       "--paper-clock"])
    assert result.exit_code == 2 and "--paper-clock" in result.output and "--exchange-url" in result.output


async def test_the_decision_hook_times_every_risk_checked_child_decision(db_path: Path) -> None:
    decisions: list[float] = []
    async with harness(db_path, hooks=EngineHooks(decision_seconds=decisions.append)) as h:
        execution_id = await h.supervisor.submit(h.request(qty="0.3", duration="5m"))
        await h.supervisor.wait_all()
        history = [s.event for s in await h.store.read(execution_id)]
    checked = [e for e in history if isinstance(e, ev.TwapSliceExecuted) and e.status != "skipped"]
    assert len(checked) == 5 and len(decisions) == 5 and all(s >= 0 for s in decisions)
    assert sum((e.filled_qty for e in checked), Decimal(0)) == Decimal("0.3")


class RefusingExchange(ThreadingHTTPServer):
    """An exchange that answers every request 400 (Binance's -1100, not worth retrying) and
    records the paths asked: a daemon's start fails at once, on whatever it asked first."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        server = self

        class Refuse(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.paths.append(self.path.split("?")[0])
                body = json.dumps({"code": -1100, "msg": "Illegal characters found in a parameter."}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Refuse)


@pytest.mark.slow
def test_a_ccxt_daemon_asks_no_exchange_for_its_clock_unless_told(tmp_path: Path) -> None:
    """Without ``--paper-clock`` the daemon never probes ``/admin/clock``: it fails on loading
    the markets, not on the clock, and the exchange saw no clock request; with it, the clock is
    the first thing it asks for. (The exchange refuses everything at once: no retries to wait.)"""
    creds = {"GENESIS_API_KEY": "key", "GENESIS_API_SECRET": "secret"}
    exchange = RefusingExchange()
    serving = threading.Thread(target=exchange.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{exchange.server_address[1]}"
    try:
        plain = genesis_process(["run", "--venue", "ccxt:binance", "--exchange-url", url, "--db", "a.db",
                                 "--no-pidfile"], tmp_path, **creds)
        assert plain.returncode == 1 and "cannot load its markets" in plain.stderr, plain.stderr
        assert exchange.paths and "/admin/clock" not in exchange.paths, exchange.paths
        exchange.paths.clear()
        asked = genesis_process(["run", "--venue", "ccxt:binance", "--exchange-url", url, "--paper-clock",
                                 "--db", "b.db", "--no-pidfile"], tmp_path, **creds)
        assert asked.returncode == 1 and f"cannot reach the exchange at {url}" in asked.stderr, asked.stderr
        assert exchange.paths == ["/admin/clock"], exchange.paths
    finally:
        exchange.shutdown()
        exchange.server_close()
