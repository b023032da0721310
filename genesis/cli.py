"""``genesis`` command line. Every command takes ``--db`` and ``--config``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from genesis.cli_analytics import report, sql, watch
from genesis.cli_context import Context, common
from genesis.cli_orders import CONTROL_COMMANDS, submit, urgency
from genesis.cli_status import metrics, status
from genesis.cli_support import (AlgorithmOptionsCommand, Choice, CommandFailed, ExistingFile, LazyGroup, PlainFloat,
                                 PlainInt, backtest_window, chaos_hooks, option_error, paper_clock_source)
from genesis.requests import cut, shown


@click.group(cls=LazyGroup)
@click.version_option(package_name="genesis")
def main() -> None:
    """genesis: works large parent orders into the market (TWAP, VWAP, POV, IS), event-sourced in
    SQLite or PostgreSQL."""


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@common
def db_upgrade(ctx: Context) -> None:
    """Run Alembic migrations to head."""
    from genesis.store import migrate

    ctx.upgrade()
    click.echo(f"{ctx.db_path}: at revision {migrate.current_revision(ctx.db_path)}")


@db.command("rebuild-projections")
@common
def db_rebuild(ctx: Context) -> None:
    """Rebuild the query tables from the event log (stop the daemon first)."""
    from genesis.engine.pidlock import running_daemon
    from genesis.store.projector import rebuild_sync

    pid = running_daemon(ctx.db_path)
    if pid is not None:
        raise click.ClickException(f"a genesis daemon ({pid}) is running on {ctx.db_path}; stop it first")
    with ctx.engine().begin() as conn:
        count = rebuild_sync(conn)
    click.echo(f"replayed {count} events into the projections")


TOKENS_HELP = "API token file (default <db>.tokens.json beside a SQLite --db; required with a PostgreSQL --db)."


def _parse_iso(value: str | None, option: str = "--sim-start") -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{shown(value)} is not an ISO-8601 time like 2025-06-10T13:00:00Z",
                                 param_hint=option) from None


@main.command()
@common
@click.option("--venue", default="sim", show_default=True,
              help="Where orders go: sim (embedded simulated venue) or ccxt:<exchange id>, e.g. ccxt:binance.")
@click.option("--exchange-url", default=None,
              help="ccxt venues: base URL replacing the exchange's REST host, e.g. http://127.0.0.1:8765 "
                   "(the paper exchange).")
@click.option("--paper-clock", is_flag=True,
              help="Run on the paper exchange's simulated clock (asked of <exchange-url>/admin/clock) "
                   "instead of the wall clock.")
@click.option("--speed", type=PlainFloat(), default=1.0, show_default=True,
              help="Simulated clock speed: N virtual seconds per wall second.")
@click.option("--sim-start", default=None, help="ISO-8601 time in the shipped candles where the simulated market starts.")
@click.option("--no-pidfile", is_flag=True, help="Do not write <db>.pid.")
@click.option("--kill-point", default=None, hidden=True,
              help="Chaos harness only: SIGKILL the daemon at <name>[:<n>] (genesis.engine.killpoints).")
@click.option("--http", "http", default=None, metavar="HOST:PORT",
              help="Serve the HTTP API, /healthz and /readyz here, e.g. 127.0.0.1:8780 (docs/api.md).")
@click.option("--streams", is_flag=True,
              help="ccxt venues: market data and fills from the exchange's WebSocket streams (ccxt.pro).")
@click.option("--tokens", "tokens", default=None, metavar="PATH", help=TOKENS_HELP)
@click.option("--accounts", default=None, metavar="NAME[,NAME...]",
              help="The venue account leases this daemon must hold to work (docs/ha.md); "
                   "default: leases.accounts in the config, else its venue's own account (sim, or ccxt:<id>:<key id>).")
@click.option("--lease-seconds", type=PlainFloat(), default=None, show_default="leases.lease_seconds in the config, 15",
              help="How long a lease lasts without renewal (renewed every third of it).")
def run(ctx: Context, venue: str, exchange_url: str | None, paper_clock: bool, speed: float,
        sim_start: str | None, no_pidfile: bool, kill_point: str | None, http: str | None, streams: bool,
        tokens: str | None, accounts: str | None, lease_seconds: float | None) -> None:
    """Run the daemon in the foreground."""
    if not (speed > 0 and speed < float("inf")):
        raise click.BadParameter("must be a finite number > 0", param_hint="--speed")
    if venue != "sim" and not (venue.startswith("ccxt:") and len(venue) > 5):
        raise click.BadParameter("use sim or ccxt:<exchange id>, e.g. ccxt:binance", param_hint="--venue")
    if exchange_url and venue == "sim":
        raise click.BadParameter("only for --venue ccxt:<exchange id>", param_hint="--exchange-url")
    if paper_clock and not exchange_url:
        raise click.BadParameter("needs --exchange-url (the paper exchange's address)", param_hint="--paper-clock")
    if streams and venue == "sim":
        raise click.BadParameter("only for --venue ccxt:<exchange id>", param_hint="--streams")
    if lease_seconds is not None and not (lease_seconds >= 1 and lease_seconds < float("inf")):
        raise click.BadParameter("must be a finite number of seconds >= 1", param_hint="--lease-seconds")
    account_names = tuple(a.strip() for a in (accounts or "").split(",") if a.strip())
    if accounts is not None and not account_names:
        raise click.BadParameter("name at least one account, e.g. --accounts sim", param_hint="--accounts")
    if http is not None:
        _check_http_address(http)
        tokens_path = _token_file(ctx, tokens)
    elif tokens is not None:
        raise click.BadParameter("only with --http (the API's token file)", param_hint="--tokens")
    start = _parse_iso(sim_start)
    hooks = chaos_hooks(kill_point)
    config = ctx.config()  # options and config are checked before the (slow) engine import
    if accounts is None:  # the flag wins over the config
        account_names = tuple(config.leases.accounts)
    if lease_seconds is None:
        lease_seconds = config.leases.lease_seconds

    from genesis.engine.daemon import DaemonError, DaemonOptions, run_daemon
    from genesis.log import configure_logging

    configure_logging(config.logging.level)
    options = DaemonOptions(ctx.db_path, ctx.config_path, venue, speed, start, not no_pidfile, exchange_url,
                            paper_clock_source(exchange_url) if paper_clock else None, hooks, http,
                            tokens_path if http is not None else None, streams,
                            account_names, lease_seconds)
    try:
        sys.exit(run_daemon(options, config))
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None


def _token_file(ctx: Context, tokens: str | None) -> Path:
    """The API token file: ``--tokens``, else beside a SQLite ``--db``; a usage error (exit 2)
    naming ``--tokens`` with a PostgreSQL ``--db``."""
    from genesis.api.tokens import TokenFileMissing, token_path

    try:
        return token_path(ctx.db_path, tokens)
    except TokenFileMissing as exc:
        raise click.UsageError(str(exc)) from None


def _check_http_address(address: str) -> None:
    from genesis.api.address import parse_http_address

    try:
        parse_http_address(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--http") from None


@main.group()
def token() -> None:
    """API bearer tokens (--tokens PATH, default <db>.tokens.json; docs/api.md)."""


@token.command("create")
@common
@click.option("--role", required=True, type=click.Choice(["read", "trader"]),
              help="read: GET only; trader: also submit, pause, resume, cancel, urgency.")
@click.option("--tokens", "tokens", default=None, metavar="PATH", help=TOKENS_HELP)
def token_create(ctx: Context, role: str, tokens: str | None) -> None:
    """Add an API token of ROLE and print it (the daemon picks it up at once)."""
    from genesis.api.tokens import TokenFileError, create_token

    path = _token_file(ctx, tokens)
    try:
        made = create_token(path, role)
    except TokenFileError as exc:
        raise CommandFailed(str(exc)) from None
    except OSError as exc:
        raise CommandFailed(f"{cut(path)}: cannot write the token file: {exc.strerror}") from None
    click.echo(made.token)
    click.echo(f"{role} token added to {path}", err=True)


@main.command(cls=AlgorithmOptionsCommand)
@common
@click.option("--candles", "candles_path", required=True, type=ExistingFile(),
              help="1-minute candles: CSV or CSV.gz with header timestamp,open,high,low,close,volume.")
@click.option("--symbol", required=True)
@click.option("--side", required=True)
@click.option("--qty", required=True)
@click.option("--algo", required=True, help="A windowed algorithm: twap, vwap, pov or is.")
@click.option("--start", required=True, help="Window start, ISO-8601 (e.g. 2025-07-01T00:00:00Z).")
@click.option("--duration", required=True, help="Window length, e.g. 4h or 1d.")
@click.option("--history-days", type=PlainInt(minimum=1), default=20, show_default=True, help="Candles before --start used as history.")
@click.option("--urgency", default="low", show_default=True, type=Choice(["low", "medium", "high", "critical", "emergency"]))
@click.option("--seed", type=PlainInt(), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def backtest(ctx: Context, candles_path: str, symbol: str, side: str, qty: str, algo: str, start: str,
             duration: str, history_days: int, urgency: str, seed: int, as_json: bool,
             **algorithm_options: str | None) -> None:
    """Run the real executor over a candle file on a virtual clock (temporary database unless --db)."""
    import asyncio

    from genesis.backtest import BacktestError, BacktestSpec, run_backtest
    from genesis.engine.supervisor import SubmissionRejected
    from genesis.log import configure_logging
    from genesis.requests import RequestError, parse_decimal, parse_duration

    configure_logging("error")
    try:
        parse_decimal("qty", qty)  # the text as typed (run_backtest validates the order itself)
        window = backtest_window(_parse_iso(start, "--start"), parse_duration(duration), history_days)
        spec = BacktestSpec(Path(candles_path), symbol, side, qty, algo, window[0], window[1], history_days,
                            urgency, seed, options={k: v for k, v in algorithm_options.items() if v is not None})
        db_path = ctx.db_path if ctx.db_explicit else None
        result = asyncio.run(run_backtest(spec, ctx.config(), db_path))
    except RequestError as exc:
        raise option_error(exc) from None
    except (BacktestError, ValueError, SubmissionRejected) as exc:  # a bad candle file; risk refuses the order...
        raise CommandFailed(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        click.echo(f"{key:30} {value}")


for command in (sql, report, watch, submit, urgency, *CONTROL_COMMANDS, status, metrics):
    main.add_command(command)
