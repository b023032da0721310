"""API submit-to-accepted latency: a real daemon (``genesis run --http``, simulated venue,
real-time clock) and ``clients`` concurrent HTTP clients, each submitting ``per_client``
parent orders one after the other.

For each order: from just before ``POST /v1/executions`` to (a) its ``202`` (durably queued in
the command inbox) and (b) its ``ExecutionSubmitted`` on the SSE stream, which the daemon
commits in the same transaction that settles the command ``accepted``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCEPT_TIMEOUT_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _wait_ready(url: str, deadline: float) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the daemon's API did not become ready")


async def _measure(url: str, token: str, clients: int, per_client: int) -> dict[str, float]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    sent: dict[str, float] = {}
    queued_ms: list[float] = []
    accepted_ms: dict[str, float] = {}
    all_accepted = asyncio.Event()
    total = clients * per_client

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 8)) as session:
        stream = await session.get(f"{url}/v1/stream?types=ExecutionSubmitted", headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=None, sock_read=None))

        async def listen() -> None:
            async for raw in stream.content:
                line = raw.decode()
                if line.startswith("data: "):
                    execution_id = json.loads(line[6:])["execution_id"]
                    now = time.perf_counter()
                    if execution_id in sent and execution_id not in accepted_ms:
                        accepted_ms[execution_id] = (now - sent[execution_id]) * 1e3
                        if len(accepted_ms) == total:
                            all_accepted.set()

        async def client(n: int) -> None:
            for i in range(per_client):
                body = {"symbol": "BTC/USDT", "side": "buy", "qty": "0.01", "duration": "15m",
                        "client_request_id": f"bench-{n}-{i}"}
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/executions", json=body, headers=headers) as r:
                    answer = await r.json()
                    if r.status != 202:
                        raise RuntimeError(f"submission refused: {r.status} {answer}")
                queued_ms.append((time.perf_counter() - t0) * 1e3)
                sent[answer["execution_id"]] = t0

        listener = asyncio.create_task(listen())
        t_start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        try:
            await asyncio.wait_for(all_accepted.wait(), ACCEPT_TIMEOUT_SECONDS)
        finally:
            listener.cancel()
            stream.close()
        wall = time.perf_counter() - t_start
    accepted = list(accepted_ms.values())
    return {"clients": clients, "orders": total, "accepted": len(accepted), "wall_seconds": wall,
            "orders_per_second": total / wall,
            "queued_p50_ms": _pct(queued_ms, 0.5), "queued_p99_ms": _pct(queued_ms, 0.99),
            "accepted_p50_ms": _pct(accepted, 0.5), "accepted_p99_ms": _pct(accepted, 0.99),
            "accepted_mean_ms": statistics.fmean(accepted), "accepted_max_ms": max(accepted)}


def run(clients: int = 100, per_client: int = 5) -> dict[str, float]:
    """Start a daemon on a fresh database, measure, stop it (SIGTERM)."""
    with tempfile.TemporaryDirectory(prefix="genesis-api-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)
        with open(Path(tmp) / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "genesis", "run", "--db", str(db), "--http",
                                       f"127.0.0.1:{port}", "--config", str(ROOT / "config" / "runtime.yaml")],
                                      cwd=tmp, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            asyncio.run(_wait_ready(url, time.monotonic() + 60))
            entries = json.loads((Path(tmp) / "bench.db.tokens.json").read_text())["tokens"]
            token = next(e["token"] for e in entries if e["role"] == "trader")
            return asyncio.run(_measure(url, token, clients, per_client))
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
