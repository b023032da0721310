"""``genesis submit``, ``pause``, ``resume``, ``cancel`` and ``urgency``: commands stored in the
database's command inbox for the daemon to apply (registered on the ``genesis`` group by
``genesis.cli``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from genesis.cli_context import Context, common
from genesis.cli_support import (AlgorithmOptionsCommand, Choice, CommandFailed, PlainInt, option_error,
                                 report_verdict, wait_options)
from genesis.requests import cut

if TYPE_CHECKING:
    from genesis.config import RuntimeConfig


@click.command(cls=AlgorithmOptionsCommand)
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


def _control(kind: str) -> Callable[..., None]:
    @common
    @click.argument("execution_id")
    @wait_options
    def command(ctx: Context, execution_id: str, wait: bool, wait_timeout: float) -> None:
        _enqueue_control(ctx, kind, execution_id, None, wait, wait_timeout)
    command.__doc__ = f"Durably request {kind} of one execution (the daemon applies it)."
    return command


# pause, resume, cancel: one command each, registered by ``genesis.cli``
CONTROL_COMMANDS = [click.command(kind)(_control(kind)) for kind in ("pause", "resume", "cancel")]


@click.command()
@common
@click.argument("execution_id")
@click.argument("level", type=Choice(["low", "medium", "high", "critical", "emergency"]))
@wait_options
def urgency(ctx: Context, execution_id: str, level: str, wait: bool, wait_timeout: float) -> None:
    """Change a running VWAP's urgency (emergency: liquidate the rest now, overriding the
    participation cap but not hard risk limits). Recorded as an event by the daemon."""
    _enqueue_control(ctx, "urgency", execution_id, {"urgency": level}, wait, wait_timeout)
