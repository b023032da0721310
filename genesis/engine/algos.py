"""Moved to ``genesis.algorithms`` (one module per algorithm, a registry); these names are
kept so that code written against the old module still imports."""

from genesis.algorithms.base import SliceSizing, VwapSettings  # noqa: F401
