"""The engine's settings from the runtime configuration: the runners' at start-up
(``runner_settings``) and new ones on SIGHUP (``apply_config``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genesis.engine.runner import RunnerSettings

if TYPE_CHECKING:
    from genesis.config import RuntimeConfig
    from genesis.engine.supervisor import Supervisor


def runner_settings(config: "RuntimeConfig") -> RunnerSettings:
    from genesis.algorithms.base import VwapSettings
    from genesis.engine.slice_executor import RoutingSettings
    from genesis.engine.venue_calls import RetryPolicy

    return RunnerSettings(
        pause_policy=config.twap.pause_policy,
        retry=RetryPolicy(base_seconds=config.engine.venue_retry_seconds,
                          outcome_alarm_seconds=config.engine.outcome_alarm_seconds),
        routing=RoutingSettings(config.router.maker_first, config.router.maker_timeout_seconds),
        twap=config.twap.params(),
        vwap=VwapSettings(config.vwap.interval_seconds, config.vwap.behind_tolerance, config.vwap.intraday_adjustment))


def apply_config(supervisor: "Supervisor", config: "RuntimeConfig") -> None:
    """SIGHUP: new limits and settings for slices from now on (running runners keep theirs)."""
    supervisor.risk.limits = config.risk.limits()
    supervisor.settings = runner_settings(config)
    supervisor.router_twap = config.router.twap
    supervisor.strategist_min_equity_usdt = config.tiers.strategist_min_equity_usdt
    if supervisor.account_caps is not None:  # every leg from now on, running executions' too
        supervisor.account_caps.adopt(config.risk.account_participation_cap)
