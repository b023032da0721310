"""Execution algorithms: one module per algorithm (its typed config and its class), the
interface they share (``base``) and the registry the engine consults (``registry``)."""
