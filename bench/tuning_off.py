"""``BENCH_TUNING_OFF``: the daemon's scheduling tuning (``genesis.tuning``) with pieces turned
off, to measure what each one pays: a comma-separated list of ``pacer`` (the runners' loop
pacer), ``slot`` (the store writer's slot), ``gc`` (heap freeze and collector thresholds),
``switch`` (the 1 ms thread switch interval), or ``all``."""

from __future__ import annotations

import dataclasses
import os

from genesis.tuning import DEFAULT_TUNING, Tuning

_OFF = {"pacer": {"loop_budget_seconds": 0}, "slot": {"writer_slot_seconds": None},
        "gc": {"gc_thresholds": None}, "switch": {"switch_interval_seconds": None}}


def bench_tuning() -> Tuning:
    names = [n.strip() for n in os.environ.get("BENCH_TUNING_OFF", "").split(",") if n.strip()]
    if names == ["all"]:
        names = list(_OFF)
    unknown = [n for n in names if n not in _OFF]
    if unknown:
        raise SystemExit(f"BENCH_TUNING_OFF: unknown {', '.join(unknown)}; use {', '.join(_OFF)} or all")
    changes: dict[str, object] = {}
    for n in names:
        changes.update(_OFF[n])
    return dataclasses.replace(DEFAULT_TUNING, **changes)
