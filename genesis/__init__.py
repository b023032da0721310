"""genesis: an execution daemon that works large parent orders into the market (TWAP/VWAP)."""


def __getattr__(name: str) -> str:
    """``genesis.__version__``: the installed distribution's version (pyproject.toml is the one
    place it is written; ``genesis --version`` prints the same)."""
    if name == "__version__":
        from importlib.metadata import version

        return version("genesis")
    raise AttributeError(f"module 'genesis' has no attribute {name!r}")
