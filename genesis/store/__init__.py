"""Persistence: the append-only event store, its projections and the command inbox."""
