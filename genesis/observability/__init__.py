"""Operating genesis as a service: Prometheus metrics, alerts through Apprise, health checks.

- ``metrics.MetricsCollector``: the metrics, in a registry of their own; ``render()``.
- ``alerts.Alerter`` and ``alert_rules``: which events notify a human, deduplicated and
  rate-limited, sent off the event loop.
- ``health``: ``healthz()`` and ``readiness(checks)``, pure functions.
- ``http``: aiohttp routes for ``/metrics``, ``/healthz``, ``/readyz``.
- ``runtime.Observability``: the daemon's wiring of all of it.

Metrics, alerts and log priorities are described in docs/operations.md.
"""
