"""Shared by the ``genesis`` commands: option types that read numbers as a person types them
(ASCII digits, no ``_`` separators, no other scripts' digits) and never echo a huge input back
whole, and the one-line errors (exit status 2) that replace tracebacks."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import click

from genesis.requests import PLAIN_NUMBER_RE, RequestError, cut, shown


class CommandFailed(click.ClickException):
    """The command cannot do what was asked: one line on stderr, exit status 2."""

    exit_code = 2


def option_error(exc: RequestError) -> click.UsageError:
    """A ``RequestError`` as the CLI shows it: ``--limit-price: ...`` (exit status 2)."""
    return click.UsageError(f"--{exc.field.replace('_', '-')}: {exc.reason}")


def _storage_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    return SQLAlchemyError, sqlite3.Error, OSError


@contextmanager
def one_line_storage_errors(db_path: Path) -> Iterator[None]:
    """A database or file error (read-only file, full disk, locked...) escaping a command
    becomes ``CommandFailed`` naming the file and SQLite's or the OS's reason."""
    try:
        yield
    except _storage_errors() as exc:  # evaluated only on an error: no import cost otherwise
        if isinstance(exc, OSError):
            raise CommandFailed(f"{cut(exc.filename or db_path)}: {exc.strerror or exc}") from None
        reason = getattr(exc, "orig", None) or exc
        raise CommandFailed(f"{cut(db_path)}: database error: {reason}") from None


class PlainInt(click.ParamType):
    """A whole number in ASCII digits (``10``; not ``1_0`` or ``١٠``), optionally within
    ``[minimum, maximum]``."""

    name = "integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
            number = int(value.strip())
        else:
            self.fail(f"{shown(value)} is not a whole number >= 0 in digits 0-9, e.g. 10", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"must be >= {self.minimum}, got {number}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"must be <= {self.maximum}, got {number}", param, ctx)
        return number


class PlainFloat(click.ParamType):
    """A decimal number in ASCII digits with at most one ``.`` (``2.5``; not ``2_5`` or ``1e3``),
    optionally strictly above ``above``."""

    name = "number"

    def __init__(self, above: float | None = None):
        self.above = above

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            number = value
        elif isinstance(value, str) and PLAIN_NUMBER_RE.fullmatch(value.strip()):
            number = float(value.strip())
        else:
            self.fail(f"{shown(value)} is not a plain number in digits 0-9 and one '.', e.g. 2.5", param, ctx)
        if self.above is not None and not number > self.above:
            self.fail(f"must be > {self.above:g}, got {number:g}", param, ctx)
        return number


class ExistingFile(click.ParamType):
    """The name of an existing regular file, as typed (a long name is shown cut short)."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            found = Path(value).is_file()
        except OSError as exc:  # e.g. a name too long for the file system
            self.fail(f"{cut(value)}: {exc.strerror}", param, ctx)
        if not found:
            self.fail(f"{cut(value)}: no such file", param, ctx)
        return str(value)


class Choice(click.Choice):
    """``click.Choice`` whose error shows a long input cut short."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value not in self.choices:
            self.fail(f"{shown(value)} is not one of {', '.join(map(str, self.choices))}", param, ctx)
        return super().convert(value, param, ctx)


class AlgorithmOptionsCommand(click.Command):
    """A command that takes every algorithm's own submit options (``--participation`` ...), read
    from the algorithm registry when the command runs or shows its help: ``genesis`` itself
    starts without importing the engine."""

    _added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._added:
            from genesis.algorithms.registry import option_users, submit_options

            for option in submit_options():
                users = " or ".join(option_users(option.name))
                self.params.append(click.Option([option.flag, option.name], default=None,
                                                help=f"{users} only: {option.help}"))
            self._added = True
        return super().get_params(ctx)


class LazyGroup(click.Group):
    """A command group whose heavy subcommands (``LAZY``) are imported only when they run:
    every ``genesis`` call pays only for the modules its own command needs."""

    LAZY = {"paper-exchange": ("genesis.paper.command", "main",
                               "Run a local Binance-compatible paper exchange over the shipped candles.")}
    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LAZY:
            return super().get_command(ctx, cmd_name)
        module_name, attribute, short_help = self.LAZY[cmd_name]
        if self._listing:  # ``--help`` lists it: its help line, without the import
            return click.Command(cmd_name, help=short_help)
        import importlib

        return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


def backtest_window(start: datetime | None, duration_seconds: int, history_days: int) -> tuple[datetime, int]:
    """``(start, duration_seconds)`` once the window and its history fit a backtest and the calendar."""
    from genesis.backtest import MAX_BACKTEST_SECONDS

    assert start is not None  # --start is required
    if duration_seconds > MAX_BACKTEST_SECONDS:
        raise click.UsageError(f"--duration: {duration_seconds}s is longer than a backtest runs "
                               f"(at most {MAX_BACKTEST_SECONDS}s, 1d)")
    try:
        start - timedelta(days=history_days)
    except OverflowError:
        raise click.UsageError(f"--history-days: {history_days} days before --start {start.isoformat()} "
                               "is before year 1; use fewer days") from None
    try:
        start + timedelta(seconds=duration_seconds)
    except OverflowError:
        raise click.UsageError(f"--start: {start.isoformat()} plus --duration {duration_seconds}s is past "
                               "year 9999; use a start within the candle file") from None
    return start, duration_seconds


class NoVerdict(click.ClickException):
    """``--wait`` timed out: the command is stored, the daemon has not settled it (exit status 3)."""

    exit_code = 3


def wait_options(fn: Any) -> Any:
    """Add ``--wait`` and ``--wait-timeout`` to a command that stores a command for the daemon."""
    fn = click.option("--wait-timeout", type=PlainFloat(), default=30.0, show_default=True,
                      help="With --wait: give up after this many seconds (exit status 3).")(fn)
    return click.option("--wait", is_flag=True,
                        help="Block until the daemon accepted (exit 0) or rejected (exit 1) the command, "
                             "printing why.")(fn)


def report_verdict(what: str, verdict: tuple[str, str | None] | None, timeout_seconds: float) -> None:
    """Print the daemon's verdict on ``what`` (stderr); a refusal or no verdict is an error."""
    from genesis.store.inbox import SETTLED_OK

    if verdict is None:
        raise NoVerdict(f"{what}: no verdict from the daemon within {timeout_seconds:g}s (is `genesis run` "
                        "running on this database?); the command stays queued")
    outcome, detail = verdict
    if outcome not in SETTLED_OK:
        raise click.ClickException(f"{what}: {outcome} by the daemon{f': {detail}' if detail else ''}")
    click.echo(f"{what}: {outcome}{f' ({detail})' if detail else ''}", err=True)


def chaos_hooks(kill_point: str | None):  # type: ignore[no-untyped-def]
    """The engine hooks for ``--kill-point`` (none without it)."""
    from genesis.engine.hooks import NO_HOOKS, EngineHooks
    from genesis.engine.killpoints import KillPoints

    if kill_point is None:
        return NO_HOOKS
    try:
        return EngineHooks(kill_points=KillPoints.parse(kill_point))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kill-point") from None


def paper_clock_source(url: str):  # type: ignore[no-untyped-def]
    """The daemon's clock source for ``--paper-clock``: the paper exchange's simulated time."""
    async def clock():  # type: ignore[no-untyped-def]
        from genesis.engine.daemon import DaemonError
        from genesis.paper.clock import ExchangeUnreachable, exchange_clock

        try:
            return await exchange_clock(url)
        except ExchangeUnreachable as exc:
            raise DaemonError(str(exc)) from None
    return clock
