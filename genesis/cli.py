"""``genesis`` command line. Every command takes ``--db`` and ``--config``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from genesis.cli_analytics import report, sql, watch
from genesis.cli_context import Context, common
from genesis.cli_support import (AlgorithmOptionsCommand, Choice, CommandFailed, ExistingFile, LazyGroup, PlainFloat, PlainInt,
                                 backtest_window, chaos_hooks, option_error, paper_clock_source, report_verdict,
                                 wait_options)
from genesis.requests import cut, shown

if TYPE_CHECKING:
    from genesis.config import RuntimeConfig


@click.group(cls=LazyGroup)
@click.version_option(package_name="genesis")
def main() -> None:
    """genesis: works large parent orders into the market with TWAP, event-sourced in SQLite."""


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


@main.command(cls=AlgorithmOptionsCommand)
@common
@click.option("--symbol", default=None, help="Unified symbol, e.g. BTC/USDT.")
@click.option("--side", default=None, help="buy or sell.")
@click.option("--qty", default=None, help="Parent quantity in base currency, e.g. 2.5.")
@click.option("--algo", default="twap", show_default=True,
              help="twap, vwap, pov, is, auto (the router decides single vs TWAP) or single.")
@click.option("--duration", default=None, help="Window, e.g. 15m, 900s, 4h (default from the config).")
@click.option("--slices", type=PlainInt(), default=None, help="TWAP only: number of child slices (default: one per minute).")
@click.option("--limit-price", default=None, help="Worst price for every child order.")
@click.option("--id", "request_id", default=None, help="Client request id: resubmitting it returns the same execution.")
@click.option("--urgency", default=None, help="VWAP and IS: low, medium, high, critical or emergency.")
@click.option("--account", default=None,
              help="Venue account to trade on (a daemon holding its lease takes it); default: the account "
                   "of the daemon that takes it.")
@wait_options
@click.option("--file", "orders_file", type=click.File("r"), default=None,
              help="Many orders, one JSON object per line (fields as the API's POST /v1/executions): "
                   "all stored, or none when a line is bad.")
def submit(ctx: Context, symbol: str | None, side: str | None, qty: str | None, algo: str, duration: str | None,
           slices: int | None, limit_price: str | None, request_id: str | None, urgency: str | None,
           account: str | None, wait: bool, wait_timeout: float, orders_file: Any,
           **algorithm_options: str | None) -> None:
    """Durably record a parent order (or a file of them); prints its execution id."""
    from genesis.requests import RequestError, validate_submit
    from genesis.store.inbox import enqueue_submit, submit_command_id, wait_for_verdict
    from genesis.venue.instruments import SIM_INSTRUMENTS

    config = ctx.config()
    if orders_file is not None:
        _submit_file(ctx, orders_file, config)
        return
    for option, value in (("--symbol", symbol), ("--side", side), ("--qty", qty)):
        if value is None:
            raise click.UsageError(f"Missing option '{option}' (or give --file)")
    assert symbol is not None and side is not None and qty is not None
    if account is None and config.leases.accounts:  # the configured daemon's account
        account = config.leases.accounts[0]
    try:
        req = validate_submit(symbol=symbol, side=side, qty=qty, algo=algo, duration=duration, slices=slices,
                              limit_price=limit_price, request_id=request_id, instruments=SIM_INSTRUMENTS,
                              config=config, urgency=urgency, options=algorithm_options, account=account)
    except RequestError as exc:
        raise option_error(exc) from None
    if config.risk.kill_switch:  # the daemon's parent risk check would refuse it (the others need prices)
        raise CommandFailed(f"risk: kill switch is on (risk.kill_switch in {ctx.config_path}); nothing was stored")
    engine = ctx.engine(must_exist=False)
    try:
        execution_id, _created = enqueue_submit(engine, req)
    except RequestError as exc:
        raise option_error(exc) from None
    click.echo(execution_id)
    if wait:
        report_verdict(f"submission {execution_id}",
                       wait_for_verdict(engine, submit_command_id(engine, execution_id), wait_timeout), wait_timeout)


def _enqueue_control(ctx: Context, kind: str, execution_id: str, payload: dict[str, str] | None,
                     wait: bool, wait_timeout: float) -> None:
    """Store one control command (refused here when the daemon could only refuse it); with
    ``wait``, report the daemon's verdict."""
    from genesis.requests import RequestError
    from genesis.store.inbox import enqueue_control, wait_for_verdict

    engine = ctx.engine()
    try:
        command_id = enqueue_control(engine, kind, execution_id, payload)
    except RequestError as exc:
        raise CommandFailed(str(exc)) from None
    what = f"{kind} {payload['urgency']}" if payload else kind
    click.echo(f"{what} requested for {execution_id}")
    if wait:
        report_verdict(f"{what} of {execution_id}", wait_for_verdict(engine, command_id, wait_timeout), wait_timeout)


def _submit_file(ctx: Context, orders_file: Any, config: RuntimeConfig) -> None:
    """``submit --file``: every line validated, then all stored in one transaction, or none."""
    from genesis.api.submission import ApiError, submissions_from_lines
    from genesis.requests import RequestError
    from genesis.store.inbox import enqueue_submits
    from genesis.venue.instruments import SIM_INSTRUMENTS

    click_ctx = click.get_current_context()
    given = [f"--{name.replace('_', '-')}" for name in click_ctx.params if name != "orders_file"
             and click_ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
             and name not in ("db", "config")]
    if given:
        raise click.UsageError(f"--file takes every order from the file; drop {', '.join(given)}")
    try:
        reqs = submissions_from_lines(orders_file, SIM_INSTRUMENTS, config)
    except ApiError as exc:
        raise CommandFailed(f"{cut(orders_file.name)}: {exc.error} ({exc.fix}); nothing was stored") from None
    if config.risk.kill_switch:
        raise CommandFailed(f"risk: kill switch is on (risk.kill_switch in {ctx.config_path}); nothing was stored")
    try:
        results = enqueue_submits(ctx.engine(must_exist=False), reqs)
    except RequestError as exc:
        raise CommandFailed(f"{cut(orders_file.name)}: client_request_id: {exc.reason}; nothing was stored") from None
    for execution_id, _created in results:
        click.echo(execution_id)


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


def _control(kind: str) -> Callable[..., None]:
    @common
    @click.argument("execution_id")
    @wait_options
    def command(ctx: Context, execution_id: str, wait: bool, wait_timeout: float) -> None:
        _enqueue_control(ctx, kind, execution_id, None, wait, wait_timeout)
    command.__doc__ = f"Durably request {kind} of one execution (the daemon applies it)."
    return command


for _kind in ("pause", "resume", "cancel"):
    main.command(_kind)(_control(_kind))


@main.command()
@common
@click.argument("execution_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(ctx: Context, execution_id: str | None, as_json: bool) -> None:
    """Executions with state, filled/target, average price and progress."""
    from genesis.store.queries import execution_status

    rows = execution_status(ctx.engine(), execution_id)
    if execution_id and not rows:
        raise click.ClickException(f"no execution {shown(execution_id)}")
    if as_json:
        click.echo(json.dumps(rows if not execution_id else rows[0], indent=2))
        return
    _print_status(rows)
    if execution_id is None:
        _print_leases(ctx)
        _print_venue_usage(ctx)


def _print_leases(ctx: Context) -> None:
    """Which daemon owns which venue account (the ``leases`` table), by the database's clock."""
    from genesis.store.leases import read_leases

    with ctx.engine().connect() as conn:
        rows = read_leases(conn)
    for r in rows:
        held = "held until" if r.live else "free since"
        click.echo(f"account {r.account}: {r.owner}, epoch {r.epoch}, {held} {r.expires_at}")


def _print_venue_usage(ctx: Context) -> None:
    """The daemon's use of its venue account's limits (the ``venue_usage`` table; venues that
    count request weight only: none on the simulated venue)."""
    from genesis.store.venue_usage import read_usage

    with ctx.engine().connect() as conn:
        rows = read_usage(conn)
    for u in rows:
        source = "the exchange's count" if u.weight_source == "exchange" else "published weights"
        click.echo(f"venue {u.venue} (account {u.account}), as of {u.updated_at:%Y-%m-%d %H:%M:%S} UTC:")
        click.echo(f"  request weight {_count(u.weight_used_1m)}/{_count(u.weight_limit_1m)} in the last minute"
                   f" ({source}), {_count(u.weight_per_slice, 1)} per slice ({_count(u.weight_since_start)} over "
                   f"{u.slices_since_start} slices since the daemon started)")
        click.echo(f"  orders {_count(u.order_count_10s)}/{_count(u.order_limit_10s)} per 10 s, "
                   f"{_count(u.order_count_1d)}/{_count(u.order_limit_1d)} per day; {u.requests} requests, "
                   f"{u.rate_limited} rate-limited (429/418)")


def _count(value: float | int | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


@main.command()
@common
@click.argument("execution_id")
@click.argument("level", type=Choice(["low", "medium", "high", "critical", "emergency"]))
@wait_options
def urgency(ctx: Context, execution_id: str, level: str, wait: bool, wait_timeout: float) -> None:
    """Change a running VWAP's urgency (emergency: liquidate the rest now, overriding the
    participation cap but not hard risk limits). Recorded as an event by the daemon."""
    _enqueue_control(ctx, "urgency", execution_id, {"urgency": level}, wait, wait_timeout)


@main.command()
@common
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def metrics(ctx: Context, as_json: bool) -> None:
    """Router metrics: child trades and their average slippage (bps) per algorithm."""
    from genesis.store.queries import router_metrics

    m = router_metrics(ctx.engine())
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    for key, value in m.items():
        click.echo(f"{key:26} {value if value is not None else '-'}")


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


def _print_status(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("execution", "state", "algo", "symbol", "side", "filled/target", "progress", "avg price",
                "arrival", "IS bps", "slices", "account"):
        table.add_column(col)
    for r in rows:
        state = r["state"] if not r.get("hold_reason") else f"{r['state']}, held: {r['hold_reason']}"
        table.add_row(r["execution_id"], state, r.get("algo") or "", r.get("symbol") or "", r.get("side") or "",
                      f"{r['filled_qty']}/{r['target_qty']}", f"{r['progress_pct']:.1f}%", r.get("avg_price") or "-",
                      r.get("arrival_price") or "-", r.get("implementation_shortfall_bps") or "-",
                      f"{r.get('slices_done', 0)}/{r.get('slice_count') or '-'}", r.get("account") or "-")
    Console(width=160).print(table)
for analytics_command in (sql, report, watch):
    main.add_command(analytics_command)
