"""The HTTP API of the daemon (``genesis run --http``): ``app.build_app`` and ``server.serve_api``.

Importing this package imports nothing heavy: the CLI uses ``tokens``, ``address`` and
``submission`` without aiohttp's web stack.
"""
