"""``genesis paper-exchange`` (also ``python -m genesis.paper``): run the paper exchange.

API key: ``--key``, else ``GENESIS_API_KEY``; secret: ``--secret-file`` (a file of mode 0600
holding it), else ``GENESIS_API_SECRET``; else the pair stored in the state file (generated on
first start). ``--secret`` on the command line is refused: every user of the machine can read
a process's arguments (``ps``). The pair is written to ``<state>.credentials.json`` (mode 0600)
so the daemon can use it with ``GENESIS_CREDENTIALS_FILE``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from datetime import datetime
from pathlib import Path

import click

from genesis.cli_support import PlainFloat, PlainInt
from genesis.paper.faults import Faults, StreamFaults, parse_settings, updated
from genesis.paper.store import PaperStore
from genesis.venue.credentials import CredentialsError, check_private_file

SECRET_ON_COMMAND_LINE = (
    "--secret is refused: a command line is visible to every user of this machine (ps, "
    "/proc/<pid>/cmdline). Set GENESIS_API_SECRET in the environment, or pass --secret-file PATH "
    "(a file of mode 0600 holding the secret).")


def read_secret_file(path: Path) -> str:
    """The secret held in ``path`` (surrounding whitespace ignored); the file must be private
    (mode 0600, owned by this user): ``click.BadParameter`` naming the fix otherwise."""
    try:
        check_private_file(path)
        secret = path.read_text(encoding="utf-8").strip()
    except CredentialsError as exc:
        raise click.BadParameter(str(exc).replace("credentials file", "secret file"),
                                 param_hint="--secret-file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise click.BadParameter(f"cannot read {path}: {reason}", param_hint="--secret-file") from None
    if not secret:
        raise click.BadParameter(f"{path} is empty: write the secret into it",
                                 param_hint="--secret-file")
    return secret


def paper_credentials(state_path: Path, key: str | None, secret: str | None) -> tuple[str, str, Path]:
    """Resolve the API key pair (see module docstring) and write the 0600 credentials file."""
    store = PaperStore(state_path)
    try:
        with store.transaction():
            key = key or os.environ.get("GENESIS_API_KEY") or store.get_meta("api_key") or (
                secrets.token_hex(16))
            secret = secret or os.environ.get("GENESIS_API_SECRET") or (
                store.get_meta("api_secret") or secrets.token_hex(32))
            store.set_meta("api_key", key)
            store.set_meta("api_secret", secret)
    finally:
        store.close()
    path = state_path.with_name(state_path.name + ".credentials.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"apiKey": key, "secret": secret}, fh)
    return key, secret, path


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint="--start") from None


@click.command("paper-exchange")
@click.option("--port", type=PlainInt(0, 65535), default=8765, show_default=True, help="TCP port (0: any free).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; the admin API is unauthenticated, keep it local.")
@click.option("--state", "state", default="paper.db", show_default=True,
              help="The exchange's own SQLite file (orders, trades, balances).")
@click.option("--speed", type=PlainFloat(above=0), default=1.0, show_default=True,
              help="Simulated seconds per wall second.")
@click.option("--start", default=None, help="ISO-8601 simulated start time (default: 20 days "
              "into the shipped candles; a restart continues after the stored time).")
@click.option("--key", default=None,
              help="API key clients must send (default: $GENESIS_API_KEY, else generated once and "
                   "kept in the state file).")
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File (mode 0600) holding the API secret for HMAC-SHA256 signatures (default: "
                   "$GENESIS_API_SECRET, else generated once and kept in the state file).")
@click.option("--secret", default=None, hidden=True, help="Refused: see --secret-file.")
@click.option("--faults", "faults_text", default="",
              help='Fault injection, e.g. "p_5xx=0.05,p_429=0.02,seed=7" (see docs).')
@click.option("--stream-faults", "stream_faults_text", default="",
              help='WebSocket fault injection, e.g. "p_duplicate=0.1,p_out_of_order=0.1" (see docs).')
@click.option("--limits", "limits_text", default="",
              help='Binance limits other than the defaults, e.g. "weight_per_minute=1200,'
                   'orders_per_10s=50" (per simulated minute / 10 s / day).')
@click.option("--no-limits", is_flag=True, help="Do not enforce the request weight and order "
              "limits (the usage headers are still sent).")
def main(port: int, host: str, state: str, speed: float, start: str | None, key: str | None,
         secret_file: Path | None, secret: str | None, faults_text: str, stream_faults_text: str,
         limits_text: str, no_limits: bool) -> None:
    """Run a local Binance-compatible paper exchange over the shipped candles."""
    if secret is not None:
        raise click.UsageError(SECRET_ON_COMMAND_LINE)
    secret = read_secret_file(secret_file) if secret_file is not None else None
    if not (0 < speed < float("inf")):
        raise click.BadParameter("must be a finite number > 0", param_hint="--speed")
    try:
        faults = Faults.parse(faults_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    try:
        stream_faults = StreamFaults.parse(stream_faults_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stream-faults") from None
    from genesis.paper.limits import Limits  # binance_json and the candles: only when serving

    try:
        limits = updated(Limits(), {**parse_settings(Limits, limits_text, "limit"),
                                    **({"enabled": False} if no_limits else {})}, "limit")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limits") from None
    from genesis.log import configure_logging

    configure_logging("info")
    state_path = Path(state)
    key, secret, cred_path = paper_credentials(state_path, key, secret)
    click.echo(f"paper exchange credentials: {cred_path} "
               f"(daemon: GENESIS_CREDENTIALS_FILE={cred_path})", err=True)

    from genesis.paper.server import serve  # aiohttp and the candles: only when serving

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(port, state_path, speed, _parse_start(start), key, secret, faults, host, stop,
                    limits, stream_faults)

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
