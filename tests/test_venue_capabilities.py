"""``genesis.venue.base.capable``: a venue's optional capabilities, through wrappers too."""

from __future__ import annotations

from typing import Any

from genesis.venue.base import FencesResends, MeasuresTradedVolume, capable


class Stamping:
    """A venue that stamps its requests (``FencesResends``), and counts how often its
    attributes are looked up through a forwarding wrapper."""

    def request_clock_ms(self) -> int:
        return 0

    async def settle_sends(self, client_order_id: str, sent_by_ms: int | None = None) -> None:
        return None


class Forwarding:
    """A wrapper forwarding every attribute to ``inner`` (as ``WatchedVenue`` does)."""

    def __init__(self, inner: Any):
        self.inner, self.lookups = inner, 0

    def __getattr__(self, name: str) -> Any:
        self.lookups += 1
        return getattr(self.inner, name)


class Unhashable(Stamping):
    __hash__ = None  # type: ignore[assignment]


def test_a_venues_capabilities_through_a_wrapper_and_without_a_weak_reference() -> None:
    wrapper = Forwarding(Stamping())
    assert capable(wrapper, FencesResends) is wrapper  # the wrapper itself: its calls stay watched
    assert capable(wrapper, MeasuresTradedVolume) is None
    unhashable = Unhashable()
    assert capable(unhashable, FencesResends) is unhashable
    assert capable(unhashable, MeasuresTradedVolume) is None


def test_a_venues_capability_is_looked_up_once_per_venue_object() -> None:
    """Asked per execution at a restart and per slice after: the protocol check walks the
    capability's members each time, so its answer is kept per venue object."""
    wrapper = Forwarding(Stamping())
    assert capable(wrapper, FencesResends) is wrapper and capable(wrapper, MeasuresTradedVolume) is None
    first = wrapper.lookups
    for _ in range(10):
        assert capable(wrapper, FencesResends) is wrapper
        assert capable(wrapper, MeasuresTradedVolume) is None
    assert first > 0 and wrapper.lookups == first
