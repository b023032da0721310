"""Runtime configuration: ``config/runtime.yaml`` parsed into typed, validated models.

Every error names the offending key (``risk.price_collar_bps: ...``) and nothing is guessed:
unknown keys are rejected so a typo cannot silently fall back to a default. An error never
quotes the file's content (``--config`` may point at a file that is not a config at all, e.g. a
symlink to a secrets file): a YAML error gives its line and column, and a key that does not
look like a config key name is shown by its line number only.

The models are split by concern (``strict``: the base model and ``ConfigError``; ``trading``
and ``services``: the sections; ``runtime``: ``RuntimeConfig``; ``loading``: the file); every
public name is importable from ``genesis.config`` as before.
"""

from genesis.config.loading import load_config, parse_config
from genesis.config.runtime import RuntimeConfig, get_twap_config
from genesis.config.services import (AlertsConfig, CcxtConfig, LeasesConfig, LoggingConfig, StallConfig,
                                     StoreConfig, StreamsConfig)
from genesis.config.strict import MAX_WINDOW_SECONDS, ConfigError
from genesis.config.trading import (EngineConfig, RiskConfig, RouterConfig, SimConfig, TiersConfig, TWAPConfig,
                                    TwapAlgoConfig, VwapAlgoConfig)

__all__ = ["MAX_WINDOW_SECONDS", "AlertsConfig", "CcxtConfig", "ConfigError", "EngineConfig", "LeasesConfig",
           "LoggingConfig", "RiskConfig", "RouterConfig", "RuntimeConfig", "SimConfig", "StallConfig", "StoreConfig",
           "StreamsConfig", "TWAPConfig", "TiersConfig", "TwapAlgoConfig", "VwapAlgoConfig", "get_twap_config",
           "load_config", "parse_config"]
