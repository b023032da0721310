"""Putting the product together: one wiring for the daemon, ``genesis backtest``, the tests
and the benches."""
