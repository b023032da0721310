"""``make paper-demo``: a TWAP through the real ccxt client against the local paper exchange.

1. ``genesis paper-exchange`` starts on a free port (its own SQLite file, clock at 60x);
2. ``genesis run --venue ccxt:binance --exchange-url <url> --paper-clock`` starts with the exchange's key pair
   in ``GENESIS_API_KEY``/``GENESIS_API_SECRET`` and runs on the exchange's clock;
3. ``genesis submit`` hands it a TWAP; its status (what ``genesis status --json`` shows) is
   polled from the daemon's database until it ends;
4. the exchange's own order book (``GET /admin/orders``) is checked: every order carries a
   client id of this execution, no client id appears twice, and the quantity the exchange
   executed equals what the daemon recorded as filled;
5. both processes get SIGTERM and must exit 0.

``run_demo`` is also what the end-to-end test calls. Any failure raises ``DemoError`` with
the tail of both logs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from genesis.defaults import RUNTIME_YAML as PACKAGED_CONFIG
from genesis.domain.ids import parse_client_order_id
from genesis.store.db import sync_engine
from genesis.store.queries import execution_status
from genesis.paper.local import free_port as _free_port
from genesis.paper.local import get_json as _get_json

ROOT = Path(__file__).resolve().parent.parent.parent
TERMINAL = ("completed", "cancelled", "expired", "failed")


class DemoError(Exception):
    """A step failed; the message says which and what was seen."""


@dataclass
class DemoResult:
    execution_id: str
    status: dict[str, Any]
    orders: list[dict[str, Any]]
    client_ids: list[str] = field(default_factory=list)


class _Proc:
    """A child process in its own session with its output in a log file."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str], cwd: Path):
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "genesis", *args], cwd=cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            text = []
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise DemoError(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM") from None


def run_demo(workdir: Path, speed: float = 60.0, qty: str = "1.5", duration: str = "5m",
             start: str = "2025-06-10T13:00:00Z", timeout_seconds: float = 90.0,
             echo: Any = print) -> DemoResult:
    """Run the whole demo in ``workdir`` (files: paper-demo*.db, paper-demo*.log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("paper-demo*"):
        stale.unlink()
    port, key, secret = _free_port(), "demo-" + secrets.token_hex(8), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update(GENESIS_API_KEY=key, GENESIS_API_SECRET=secret,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    db = ["--db", str(workdir / "paper-demo.db"), "--config", str(PACKAGED_CONFIG)]
    procs: list[_Proc] = []
    try:
        echo(f"$ genesis paper-exchange --port {port} --speed {speed:g} --start {start}")
        procs.append(_Proc("paper exchange", ["paper-exchange", "--port", str(port), "--state",
                                              str(workdir / "paper-demo-exchange.db"), "--speed",
                                              str(speed), "--start", start],
                           workdir / "paper-demo-exchange.log", env, workdir))
        _wait(lambda: _get_json(url + "/api/v3/ping") == {}, 20, "the paper exchange to listen",
              procs)
        echo(f"$ genesis run --venue ccxt:binance --exchange-url {url} --paper-clock")
        procs.append(_Proc("daemon", ["run", "--venue", "ccxt:binance", "--exchange-url", url, "--paper-clock", *db],
                           workdir / "paper-demo.log", env, workdir))
        _wait(lambda: "daemon_ready" in procs[1].log.read_text(errors="replace"), 30,
              "the daemon to be ready", procs)
        args = ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", qty, "--algo", "twap",
                "--duration", duration, *db]
        echo("$ genesis " + " ".join(args[:-4]))
        execution_id = _genesis(args, env, workdir)
        status: dict[str, Any] = {}
        engine = sync_engine(workdir / "paper-demo.db")  # what `genesis status --json` reads

        def finished() -> bool:
            rows = execution_status(engine, execution_id)
            status.update(json.loads(json.dumps(rows[0], default=str)) if rows else {})
            return status.get("state") in TERMINAL

        try:
            _wait(finished, timeout_seconds, f"execution {execution_id} to finish", procs, every=0.2)
        finally:
            engine.dispose()
        orders = _get_json(url + "/admin/orders")
        result = DemoResult(execution_id, dict(status), orders,
                            [o["clientOrderId"] for o in orders])
        _check(result)
        for proc in reversed(procs):
            code = proc.stop()
            if code != 0:
                raise DemoError(f"{proc.name} exited {code} after SIGTERM\n{proc.tail()}")
        procs.clear()
        echo(f"execution {execution_id}: {status['state']}, filled {status['filled_qty']} of "
             f"{status['target_qty']} BTC at {status.get('avg_price')} (arrival "
             f"{status.get('arrival_price')}), {len(orders)} child orders on the exchange, "
             f"each with its own client id")
        return result
    except DemoError as exc:
        raise DemoError(f"{exc}\n" + "\n".join(p.tail() for p in procs)) from None
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()


def _check(result: DemoResult) -> None:
    ids = result.client_ids
    if not ids:
        raise DemoError("the exchange has no order at all")
    if len(ids) != len(set(ids)):
        raise DemoError(f"a client order id appears twice on the exchange: {sorted(ids)}")
    for cid in ids:
        try:
            execution, _, _ = parse_client_order_id(cid)
        except ValueError as exc:
            raise DemoError(f"order without a genesis client id on the exchange: {exc}") from None
        if execution != result.execution_id:
            raise DemoError(f"order {cid} is not from execution {result.execution_id}")
    executed = sum((Decimal(o["executedQty"]) for o in result.orders), Decimal(0))
    if executed != Decimal(result.status["filled_qty"]):
        raise DemoError(f"the exchange executed {executed} BTC but the daemon recorded "
                        f"{result.status['filled_qty']}")
    if result.status.get("state") != "completed":
        raise DemoError(f"execution ended {result.status.get('state')}, not completed")


def _genesis(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "genesis", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise DemoError(f"`genesis {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def _wait(ready: Any, seconds: float, what: str, procs: list[_Proc], every: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.proc.poll() is not None:
                raise DemoError(f"{proc.name} exited {proc.proc.returncode} while waiting for {what}")
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(every)
    raise DemoError(f"timed out after {seconds:.0f} s waiting for {what}")


def main() -> None:
    try:
        run_demo(Path.cwd())
    except DemoError as exc:
        print(f"paper demo FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    print("paper demo OK")


if __name__ == "__main__":
    main()
