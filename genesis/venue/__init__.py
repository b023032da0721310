"""Venues: where child orders go. The engine only sees the ``Venue`` protocol."""
