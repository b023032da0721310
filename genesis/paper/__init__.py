"""A local Binance-compatible paper exchange (``genesis paper-exchange``): the simulated
venue's market behind the Binance spot REST API, so the daemon's live ccxt code path can be
exercised without the internet. See ``docs/paper-exchange.md``."""
