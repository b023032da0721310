"""The TCA report as one self-contained HTML file (the chart embedded as a base64 PNG), for
sharing by mail or chat. No external resources, no scripts."""

from __future__ import annotations

import base64
import html
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; margin-bottom: 0.5em; }
td, th { border: 1px solid #ccc; padding: 3px 10px; text-align: left; }
td.num { text-align: right; font-family: ui-monospace, monospace; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #666; font-size: 0.9em; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="num">-</td>'
    text = html.escape(str(value))
    numeric = isinstance(value, (int, float)) or (isinstance(value, str) and _looks_numeric(value))
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _table(rows: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(k.replace('_', ' '))}</th>{_cell(v)}</tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def render_html(report: dict[str, Any], png: bytes | None) -> str:
    """The report's numbers in tables, one per section, and the chart inline."""
    top = {k: v for k, v in report.items() if not isinstance(v, dict)}
    sections = "".join(f"<h2>{html.escape(k.replace('_', ' '))}</h2>{_table(v)}"
                       for k, v in report.items() if isinstance(v, dict))
    img = ""
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        img = f'<img alt="TCA chart" src="data:image/png;base64,{data}">'
    title = html.escape(f"TCA report {report['execution_id']}: {report['algo']} {report['side']} {report['symbol']}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>{img}"
            f"<h2>execution</h2>{_table(top)}{sections}"
            '<p class="note">bps are signed: positive = worse for us. Definitions: docs/sql.md '
            "(TCA report).</p></body></html>\n")
