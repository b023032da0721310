"""Chaos testing: the daemon and the paper exchange as real processes, killed and faulted at
random, then checked against both databases (``genesis.chaos.verdict``). ``make chaos`` runs
the long version (``scripts/chaos.py``); ``tests/test_chaos_short.py`` a short one."""
