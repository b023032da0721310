"""``ccxt.order_budget`` in the runtime config: the account order budget's limit, window,
following share, guard and daily limit are settable, and a wrong value is a ``ConfigError``
naming the key and how to fix it."""

from __future__ import annotations

import pytest

from genesis.config import ConfigError, parse_config
from genesis.venue.budget_settings import BudgetSettings


def budget_config(**values: object) -> dict:
    return {"ccxt": {"order_budget": values}}


def test_an_account_with_50_orders_per_10_seconds_can_say_so() -> None:
    config = parse_config(budget_config(limit=48, daily_limit=160_000))
    settings = BudgetSettings(**config.ccxt.order_budget.model_dump())
    assert (settings.limit, settings.window_seconds, settings.daily_limit) == (48, 10.0, 160_000)
    assert (settings.following_share, settings.guard_seconds, settings.daily_margin) == (0.15, 0.25, 100)


@pytest.mark.parametrize("values, named", [
    ({"limit": 0}, "ccxt.order_budget.limit"),
    ({"limit": True}, "limit: must be a number"),
    ({"window_seconds": -1}, "ccxt.order_budget.window_seconds"),
    ({"following_share": 1.5}, "ccxt.order_budget.following_share"),
    ({"guard_seconds": 6}, "guard_seconds (6.0) must be under half of window_seconds (10.0): lower guard_seconds"),
    ({"daily_margin": 200_000}, "daily_margin (200000) must be under daily_limit (200000): lower daily_margin"),
    ({"limits": 50}, "ccxt.order_budget.limits"),
])
def test_a_wrong_value_names_the_key_and_the_fix(values: dict, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(budget_config(**values))
    assert named in str(info.value)
