"""``scripts/quality.py`` (``make quality``): the summary arithmetic by hand, and a smoke run
of the real backtests on the small shipped candle file (one 4-hour window, every algorithm)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def quality():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("quality_script", ROOT / "scripts" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(algo: str, start: str, slip: str, filled: str = "10", qty: str = "10") -> dict[str, str]:
    return {"pair": "BTC/USDT", "day": start[:10], "subset": "dev", "window": "4h", "start": start, "algo": algo,
            "qty": qty, "filled_qty": filled, "fill_rate": str(float(filled) / float(qty)), "state": "completed",
            "slippage_vs_vwap_bps": slip, "implementation_shortfall_bps": "1", "maker_ratio": "0.5",
            "wall_seconds": "1"}


def test_summary_statistics_by_hand(quality) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("twap", "2025-06-09T00:00", "3"), _row("twap", "2025-06-09T04:00", "-4"),
            _row("vwap", "2025-06-09T00:00", "1"), _row("vwap", "2025-06-09T04:00", "-2", filled="5")]
    s = quality.summarise(rows)
    twap, vwap = s[("BTC/USDT", "4h", "twap")], s[("BTC/USDT", "4h", "vwap")]
    assert twap["mean_abs"] == 3.5 and twap["rms"] == pytest.approx(math.sqrt(12.5)) and twap["bias"] == -0.5
    assert vwap["fill"] == 0.75 and vwap["short"] == 1 and vwap["min_fill"] == 0.5  # short fills are reported
    n, gain, se, share = quality.paired(rows, "BTC/USDT", "4h")
    assert (n, gain, share) == (2, 2.0, 1.0) and se == pytest.approx(0.0)  # |3|-|1| = |-4|-|-2| = 2
    text = quality.tables(rows)
    assert "| vwap | BTC/USDT | 4h | 10 | 2 | 1.50 | 1.58 |" in text and "75.000%" in text


def test_smoke_run_on_the_shipped_sample(quality, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, doc = tmp_path / "q.csv", tmp_path / "quality.md"
    doc.write_text("# Quality\n\nnarrative kept\n\n<!-- quality:begin -->\nold\n<!-- quality:end -->\n\ntail kept\n")
    assert quality.main(["--data-dir", str(DATA), "--pairs", "BTC/USDT", "--windows", "4h", "--max-starts", "1",
                         "--every", "3", "--size", "BTC/USDT", "4h", "2", "--workers", "1",
                         "--csv", str(out), "--doc", str(doc)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["algo"] for r in rows) == ["is", "pov", "twap", "vwap"]
    assert {r["start"] for r in rows} == {"2025-06-09T00:00:00+00:00"}
    vwap = next(r for r in rows if r["algo"] == "vwap")
    assert vwap["state"] == "completed" and float(vwap["fill_rate"]) == 1.0 and vwap["filled_qty"] == "2.00000"
    text = doc.read_text()
    assert "narrative kept" in text and "tail kept" in text and "\nold\n" not in text
    assert "| vwap | BTC/USDT | 4h | 2 | 1 |" in text
    pov = next(r for r in rows if r["algo"] == "pov")
    assert pov["target_participation"] == "0.03" and 0.01 <= float(pov["realised_participation"]) <= 0.06
    assert "POV: realised participation" in text and "| BTC/USDT | 4h | 0.03 | [0.01, 0.06] | 1 |" in text
    assert "| pair | window | N | twap mean IS | vwap mean IS | is mean IS | pov mean IS |" in text
