"""The web dashboard the daemon serves at ``/`` with ``genesis run --http`` (docs/dashboard.md):
``routes.dashboard_routes`` (the page, its files and the chart's data) and ``market`` (one
execution's fills against the market VWAP). Imports aiohttp: only the daemon's ``--http`` loads it."""
