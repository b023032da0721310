"""``genesis sql``, ``genesis report`` and ``genesis watch``: post-trade analysis and the live
view. All three read the database read-only; ``genesis report`` then stores its figures in
``execution_analyses`` (a derived cache; ``--no-store`` leaves the database untouched)."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from pathlib import Path

import click

from genesis.cli_context import Context, common
from genesis.cli_support import PlainInt


def _no_database(ctx: Context) -> None:
    if isinstance(ctx.db_path, Path) and not ctx.db_path.is_file():
        raise click.ClickException(f"{ctx.db_path}: no such database (use --db, $GENESIS_DB or store.db in the config)")


SQL_TIMEOUT_SECONDS = 30.0
SQL_TABLE_ROWS = 1000


class _QueryTimedOut(click.ClickException):
    exit_code = 2


@click.command()
@common
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row instead of a table; streams every row.")
@click.option("--timeout-seconds", type=click.FloatRange(0, 86_400, min_open=True), default=SQL_TIMEOUT_SECONDS,
              show_default=True, help="Stop the query when it has run this long inside SQLite (exit code 2).")
@click.option("--max-rows", type=click.IntRange(1), default=SQL_TABLE_ROWS, show_default=True,
              help="Table output: show at most this many rows (--csv has no cap).")
def sql(ctx: Context, query: str, as_csv: bool, timeout_seconds: float, max_rows: int) -> None:
    """Run one read-only SQL query (views: execution_analysis, slice_analysis,
    daily_execution_summary, router_metrics, account_owners; stored reports: execution_analyses; see
    docs/sql.md). Writes are refused; the query
    stops after --timeout-seconds inside SQLite (exit code 2)."""
    from genesis.analytics.sql import QueryError, QueryTimeout, open_query

    _no_database(ctx)
    try:
        with open_query(ctx.db_path, query, timeout_seconds) as result:
            if as_csv:
                out = csv.writer(sys.stdout, lineterminator="\n")
                out.writerow(result.columns)
                for row in result:
                    out.writerow(["" if v is None else v for v in row])
                return
            rows = list(itertools.islice(result, max_rows + 1))
    except QueryTimeout as exc:
        raise _QueryTimedOut(str(exc)) from None
    except QueryError as exc:
        raise click.ClickException(str(exc)) from None
    _print_table(result.columns, rows, max_rows)


def _print_table(columns: list[str], rows: list[tuple], max_rows: int) -> None:  # type: ignore[type-arg]
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console = Console()
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"(first {max_rows} rows shown; --max-rows N for more, --csv for every row)")
    else:
        console.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


@click.command()
@common
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the chart (PNG) here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Write a self-contained HTML report (numbers and chart) here.")
@click.option("--no-store", is_flag=True, help="Do not store the figures in the execution_analyses table.")
def report(ctx: Context, execution_id: str, as_json: bool, plot_path: str | None, html_path: str | None,
           no_store: bool) -> None:
    """Transaction cost analysis of one execution: shortfall, VWAP/TWAP slippage, participation,
    maker ratio, timing and the theoretical best for the window. The figures are stored in
    the execution_analyses table (one row per execution, replaced by the next run)."""
    from genesis.analytics.data import load_history
    from genesis.analytics.report import tca_report
    from genesis.analytics.sql import QueryError, readonly_engine

    _no_database(ctx)
    cap = ctx.config().twap.participation_cap
    try:
        engine = readonly_engine(ctx.db_path)
        try:
            history = load_history(engine, execution_id)
        finally:
            engine.dispose()
    except (LookupError, QueryError) as exc:
        raise click.ClickException(str(exc)) from None
    result = tca_report(history, cap)
    if not no_store:
        _store_analysis(ctx, result)
    png = None
    if plot_path or html_path:
        from genesis.analytics.plot import render_png

        png = render_png(history, result)
    if plot_path:
        Path(plot_path).write_bytes(png)  # type: ignore[arg-type]
    if html_path:
        from genesis.analytics.html import render_html

        Path(html_path).write_text(render_html(result, png), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _print_report(result)
    if not no_store:
        click.echo(f"\nstored in execution_analyses (genesis sql \"SELECT * FROM execution_analyses "
                   f"WHERE execution_id = '{result['execution_id']}'\")")
    for path, what in ((plot_path, "chart"), (html_path, "HTML report")):
        if path:
            click.echo(f"{what} written to {path}")


def _store_analysis(ctx: Context, result: dict) -> None:  # type: ignore[type-arg]
    """Replace the execution's ``execution_analyses`` row with ``result`` (migrating first)."""
    from datetime import datetime, timezone

    from sqlalchemy.exc import SQLAlchemyError

    from genesis.analytics.analyses import save_analysis

    hint = "pass --no-store to only print the report"
    try:
        engine = ctx.engine()
    except click.ClickException as exc:
        raise click.ClickException(f"{exc.message}; {hint}") from None
    try:
        save_analysis(engine, result, datetime.now(timezone.utc))
    except SQLAlchemyError as exc:
        raise click.ClickException(f"{ctx.db_path}: cannot store the analysis in execution_analyses: "
                                   f"{getattr(exc, 'orig', None) or exc}; {hint}") from None
    finally:
        engine.dispose()


def _print_report(result: dict) -> None:  # type: ignore[type-arg]
    click.echo(f"TCA {result['execution_id']}: {result['algo']} {result['side']} {result['symbol']} "
               f"({result['state']}, {result['completion_reason'] or 'running'})")
    for key, value in result.items():
        if isinstance(value, dict):
            click.echo(f"\n{key.replace('_', ' ')}")
            for k, v in value.items():
                click.echo(f"  {k:30} {'-' if v is None else v}")


@click.command()
@common
@click.argument("execution_id", required=False)
@click.option("--interval", type=click.FloatRange(0.1, 1.0), default=1.0, show_default=True,
              help="Seconds between refreshes (at most 1).")
@click.option("--recent", type=PlainInt(0, 1000), default=10, show_default=True,
              help="Finished executions shown below the active ones.")
@click.option("--once", is_flag=True, help="Print one frame and exit (no full-screen view).")
def watch(ctx: Context, execution_id: str | None, interval: float, recent: int, once: bool) -> None:
    """Live view of active and recent executions (or follow one): progress, prices, shortfall,
    participation. Full screen, refreshed every second; Ctrl-C exits."""
    from genesis.analytics import watch as w
    from genesis.analytics.sql import QueryError

    _no_database(ctx)
    try:
        if once:
            click.echo(w.render_to_string(ctx.db_path, execution_id, width=160, recent=recent), nl=False)
            return
        w.watch(ctx.db_path, execution_id, interval, recent)
    except KeyboardInterrupt:
        return
    except QueryError as exc:
        raise click.ClickException(str(exc)) from None
