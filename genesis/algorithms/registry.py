"""The registered algorithms: name -> class. The runner, the supervisor, the submit
validation, the command inbox and the backtest consult this table; nothing else knows an
algorithm's name. Adding an algorithm is one line in ``ALGORITHMS``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from genesis.algorithms.base import Algorithm, Context, SubmitOption
from genesis.algorithms.implementation_shortfall import ImplementationShortfallExecutor
from genesis.algorithms.pov import PovExecutor
from genesis.algorithms.single import SingleOrder
from genesis.algorithms.twap import RouterTwap, RouterTwapConfig, TwapExecutor
from genesis.algorithms.vwap import VWAPExecutionStrategy
from genesis.domain.execution import Execution
from genesis.domain.router import RouteDecision

ALGORITHMS: dict[str, type[Algorithm]] = {cls.name: cls for cls in (  # type: ignore[misc]
    TwapExecutor, VWAPExecutionStrategy, SingleOrder, RouterTwap, PovExecutor, ImplementationShortfallExecutor,
)}
ROUTED = "auto"  # not an algorithm: the router picks ``single`` or ``router_twap`` by notional
ROUTER_ENTRY = (ROUTED, SingleOrder.name)


def submittable() -> tuple[str, ...]:
    """The ``--algo`` values: the registered algorithms a person may ask for, and ``auto``.
    The router's TWAP is reached through ``auto``."""
    return (*[n for n in ALGORITHMS if n != RouterTwap.name], ROUTED)


def algorithm_class(name: str) -> type[Algorithm]:
    """The class registered as ``name`` (``KeyError`` names the known ones)."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}") from None


def stored_name(name: str) -> str:
    """What an execution of the algorithm ``name`` records as its ``algo``: the router's TWAP
    is recorded as ``twap`` with its ``RouterTwapConfig`` in the params (the patch's event
    contract and the ``router_metrics`` buckets rely on it)."""
    return TwapExecutor.name if name == RouterTwap.name else name


def registered_name(algo: str, params: Mapping[str, str]) -> str:
    """The algorithm a stored execution runs under: the one place that reads the router's TWAP
    back from its stored form (``algo`` ``twap`` with the router's params)."""
    if algo == TwapExecutor.name and RouterTwapConfig.PARAMS[0] in params:
        return RouterTwap.name
    return algo


def algorithm_for(agg: Execution, ctx: Context) -> Algorithm:
    """The algorithm configured for one execution."""
    return algorithm_class(registered_name(agg.algo, agg.params)).for_execution(agg, ctx)


def submit_options() -> list[SubmitOption]:
    """Every algorithm's own submit options, each once (the CLI derives its flags from these)."""
    seen: dict[str, SubmitOption] = {}
    for cls in ALGORITHMS.values():
        for option in cls.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class RoutedSubmission:
    """What the router's decision makes of a submission: the algorithm it runs under, and the
    facts its ``ExecutionSubmitted`` records."""

    name: str
    execution_style: str
    duration_seconds: int
    slice_count: int
    params: dict[str, str]


def router_decides(name: str) -> bool:
    """``auto`` and ``single`` go through the router (``single`` as a forced single order)."""
    return name in ROUTER_ENTRY


def routed_submission(route: RouteDecision, router_min_notional_usd: Decimal, router_slices: int) -> RoutedSubmission:
    """The router's decision as a submission: a single order, or the router's TWAP with its
    ``RouterTwapConfig`` in the params."""
    if route.execution_style == RouteDecision.TWAP:
        config = RouterTwapConfig(route.interval_seconds, router_min_notional_usd, router_slices)
        return RoutedSubmission(RouterTwap.name, route.execution_style, route.duration_seconds, route.slices,
                                config.to_params())
    return RoutedSubmission(SingleOrder.name, route.execution_style, 0, route.slices, {})


def urgency_algorithms() -> tuple[str, ...]:
    """The algorithms whose urgency an operator may change while they run."""
    return tuple(n for n, cls in ALGORITHMS.items() if cls.changes_urgency)


def option_users(option_name: str) -> tuple[str, ...]:
    """The algorithms that take the submit option ``option_name``."""
    return tuple(n for n, cls in ALGORITHMS.items() if option_name in {o.name for o in cls.options})


def windowed_submittable() -> tuple[str, ...]:
    """The ``--algo`` values that take a ``--duration``."""
    return tuple(n for n in submittable() if not router_decides(n) and ALGORITHMS[n].duration_section is not None)


def slice_count_users() -> tuple[str, ...]:
    """The ``--algo`` values whose plan ``--slices`` sets (the others slice by their own interval)."""
    return tuple(n for n in submittable() if not router_decides(n) and ALGORITHMS[n].honours_slice_count)


def urgency_users() -> tuple[str, ...]:
    """The algorithms that take ``--urgency`` at submit."""
    return tuple(n for n, cls in ALGORITHMS.items() if cls.accepts_urgency)
