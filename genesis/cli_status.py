"""``genesis status`` and ``genesis metrics``: what the database says now (executions, account
leases, the venue account's limits, router metrics), registered by ``genesis.cli``."""

from __future__ import annotations

import json
from typing import Any

import click

from genesis.cli_context import Context, common
from genesis.requests import shown


@click.command()
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


@click.command()
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
