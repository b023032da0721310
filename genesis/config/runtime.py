"""``RuntimeConfig``: every section of ``config/runtime.yaml`` in one model."""

from __future__ import annotations

from genesis.config.services import (AlertsConfig, CcxtConfig, LeasesConfig, LoggingConfig, StoreConfig)
from genesis.config.strict import _Strict
from genesis.config.trading import (EngineConfig, RiskConfig, RouterConfig, SimConfig, TiersConfig, TWAPConfig,
                                    TwapAlgoConfig, VwapAlgoConfig)


class RuntimeConfig(_Strict):
    engine: EngineConfig = EngineConfig()
    risk: RiskConfig = RiskConfig()
    twap: TwapAlgoConfig = TwapAlgoConfig()
    vwap: VwapAlgoConfig = VwapAlgoConfig()
    router: RouterConfig = RouterConfig()
    tiers: TiersConfig = TiersConfig()
    sim: SimConfig = SimConfig()
    logging: LoggingConfig = LoggingConfig()
    alerts: AlertsConfig = AlertsConfig()
    store: StoreConfig = StoreConfig()
    leases: LeasesConfig = LeasesConfig()
    ccxt: CcxtConfig = CcxtConfig()


def get_twap_config(config: RuntimeConfig) -> TWAPConfig:
    """The router's TWAP settings (defaults when the section is missing or partial)."""
    return config.router.twap
