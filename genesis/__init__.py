"""genesis: an execution daemon that works large parent orders into the market (TWAP/VWAP)."""

__version__ = "0.1.0"
