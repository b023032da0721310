"""``make quality`` tables for POV and implementation shortfall, beside TWAP and VWAP.

POV: its realised participation (filled / the market volume from its start to its end) against its
target. IS: its shortfall against the arrival price next to TWAP's and VWAP's (and POV's) on
the same windows (the same start and seed; only windows every algorithm ran are paired).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

SHORTFALL_ALGOS = ("twap", "vwap", "is", "pov")


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def pov_table(rows: list[dict[str, Any]], windows: dict[str, int]) -> list[str]:
    """One line per pair and window: target, N, realised participation (mean, min, max), how
    many executions stayed within [min, max] participation, the fill rate."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["algo"] == "pov" and r.get("realised_participation"):
            groups[(r["pair"], r["window"])].append(r)
    if not groups:
        return []
    lines = ["", "POV: realised participation (filled / market volume from its start to its end) "
                 "against the target.", "",
             "| pair | window | target | bounds | N | mean realised | min | max | within bounds | fill rate |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (pair, window), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], windows[kv[0][1]])):
        realised = [float(r["realised_participation"]) for r in rs]
        low, high = (float(x) for x in rs[0]["participation_bounds"].split("-"))
        within = sum(1 for x in realised if low <= x <= high + 1e-9)
        fill = sum(float(r["filled_qty"]) for r in rs) / sum(float(r["qty"]) for r in rs)
        lines.append(f"| {pair} | {window} | {rs[0]['target_participation']} | [{low:g}, {high:g}] | {len(rs)} | "
                     f"{_mean(realised):.4f} | {min(realised):.4f} | {max(realised):.4f} | {within} of {len(rs)} | "
                     f"{fill * 100:.2f}% |")
    return lines


def shortfall_table(rows: list[dict[str, Any]], windows: dict[str, int]) -> list[str]:
    """Mean implementation shortfall against arrival (bps, + = worse) per algorithm, over the
    windows every algorithm present ran (paired: same start, same seed)."""
    present = [a for a in SHORTFALL_ALGOS if any(r["algo"] == a for r in rows)]
    if "is" not in present:
        return []
    by: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["algo"] in present and r["implementation_shortfall_bps"]:
            by[(r["pair"], r["window"], r["start"])][r["algo"]] = float(r["implementation_shortfall_bps"])
    lines = ["", "Implementation shortfall against arrival (bps, + = worse), paired on the windows every "
                 "algorithm ran.", "",
             "| pair | window | N | " + " | ".join(f"{a} mean IS" for a in present) + " |",
             "|---|---|---|" + "---|" * len(present)]
    keys = sorted({(p, w) for p, w, _ in by}, key=lambda k: (k[0], windows[k[1]]))
    for pair, window in keys:
        full = [v for (p, w, _), v in by.items() if (p, w) == (pair, window) and all(a in v for a in present)]
        if full:
            lines.append(f"| {pair} | {window} | {len(full)} | "
                         + " | ".join(f"{_mean([v[a] for v in full]):+.2f}" for a in present) + " |")
    return lines
