"""Instrument rules and rounding, and the deterministic client order ids."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from genesis.domain.ids import (client_order_id, client_order_namespace, is_execution_id, new_execution_id,
                                new_store_namespace, parse_client_order_id)
from genesis.domain.instrument import Instrument, InstrumentRuleError
from genesis.domain.orders import Side
from genesis.venue.instruments import SIM_INSTRUMENTS

BTC = SIM_INSTRUMENTS["BTC/USDT"]
ETH = SIM_INSTRUMENTS["ETH/USDT"]
BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("10000000"), places=6,
                     allow_nan=False, allow_infinity=False)
QTYS = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=10,
                   allow_nan=False, allow_infinity=False)
INSTRUMENTS = st.sampled_from([BTC, ETH, Instrument("Y/USDT", "Y", "USDT", Decimal("0.5"), Decimal("0.25"),
                                                    Decimal("1"), Decimal("10"))])


# -- rounding --------------------------------------------------------------------------------

@given(inst=INSTRUMENTS, price=PRICES)
def test_buy_prices_round_down_and_sell_prices_round_up(inst: Instrument, price: Decimal) -> None:
    tick = inst.tick_size
    buy = inst.round_price(price, Side.BUY)
    sell = inst.round_price(price, Side.SELL)
    assert buy % tick == 0 and sell % tick == 0
    assert price - tick < buy <= price  # never pay more than asked
    assert price <= sell < price + tick  # never sell for less than asked
    nearest = inst.round_price(price)
    assert nearest % tick == 0 and abs(nearest - price) <= tick / 2


def test_rounding_examples() -> None:
    assert BTC.round_price(Decimal("65000.129"), Side.BUY) == Decimal("65000.12")
    assert BTC.round_price(Decimal("65000.121"), Side.SELL) == Decimal("65000.13")
    assert BTC.round_price(Decimal("65000.125")) == Decimal("65000.12")  # half-even
    assert BTC.round_price(Decimal("65000.135")) == Decimal("65000.14")
    assert BTC.round_price(Decimal("65000.12"), Side.SELL) == Decimal("65000.12")  # on the tick: unchanged
    assert BTC.round_qty_down(Decimal("0.123456789")) == Decimal("0.12345")
    assert str(BTC.round_qty_down(Decimal("2"))) == "2.00000"  # quantized to the step


@given(inst=INSTRUMENTS, qty=QTYS)
def test_round_qty_down_is_the_largest_step_multiple_not_above(inst: Instrument, qty: Decimal) -> None:
    q = inst.round_qty_down(qty)
    assert q % inst.step_size == 0
    assert q <= qty < q + inst.step_size


# -- rules -----------------------------------------------------------------------------------

def test_check_order_accepts_a_valid_order() -> None:
    BTC.check_order(Decimal("0.001"), Decimal("65000"))  # 65 USDT


@pytest.mark.parametrize("qty, price, rule", [
    ("0.000015", "65000", "step size 0.00001"),
    ("0.000001", "65000", "step size"),
    ("9000.00001", "1", "maximum quantity 9000"),
    ("0.00007", "65000", "minimum notional 5 USDT"),
    ("0.00000", "65000", "minimum quantity 0.00001"),
])
def test_check_order_names_the_rule(qty: str, price: str, rule: str) -> None:
    with pytest.raises(InstrumentRuleError, match=re.escape(rule)):
        BTC.check_order(Decimal(qty), Decimal(price))


@given(inst=INSTRUMENTS, price=PRICES)
def test_min_qty_at_is_the_smallest_valid_quantity(inst: Instrument, price: Decimal) -> None:
    q = inst.min_qty_at(price)
    assert q % inst.step_size == 0 and q >= inst.min_qty
    assume(inst.max_qty is None or q <= inst.max_qty)  # at a tiny price nothing is tradable
    inst.check_order(q, price)
    smaller = q - inst.step_size
    if smaller > 0:
        with pytest.raises(InstrumentRuleError):
            inst.check_order(smaller, price)


def test_min_qty_at_examples() -> None:
    assert BTC.min_qty_at(Decimal("50000")) == Decimal("0.00010")
    assert BTC.min_qty_at(Decimal("65000")) == Decimal("0.00008")  # 5/65000 = 0.0000769 -> up
    assert BTC.min_qty_at(Decimal("10000000")) == BTC.min_qty  # min qty binds, not notional


# -- client order ids ------------------------------------------------------------------------

EXEC_IDS = st.text(alphabet="0123456789abcdef", min_size=12, max_size=12)
NAMESPACES = st.text(alphabet="0123456789abcdef", min_size=10, max_size=10)
NS = "5eed00c0de"


@given(ns=NAMESPACES, eid=EXEC_IDS, slice_index=st.integers(0, 99_999), attempt=st.integers(0, 999))
def test_client_order_ids_are_deterministic_short_binance_safe_and_parse_back(
        ns: str, eid: str, slice_index: int, attempt: int) -> None:
    coid = client_order_id(ns, eid, slice_index, attempt)
    assert coid == client_order_id(ns, eid, slice_index, attempt)
    assert len(coid) <= 36
    assert BINANCE_CLIENT_ID.match(coid)
    assert parse_client_order_id(coid) == (eid, slice_index, attempt)
    assert client_order_namespace(coid) == ns


def test_client_order_ids_differ_per_slice_attempt_and_database() -> None:
    eid = new_execution_id("req-1")
    ids = {client_order_id(NS, eid, s, a) for s in range(50) for a in range(5)}
    assert len(ids) == 250
    assert client_order_id(NS, "0123456789ab", 7, 2) == "g5eed00c0de-0123456789ab-7-2"
    assert client_order_id(NS, "0123456789ab", 99_999, 999) == "g5eed00c0de-0123456789ab-99999-999"  # 34 chars
    # the same request id (so the same execution) on another database: other client ids
    assert client_order_id("0000000001", eid, 0, 0) != client_order_id("0000000002", eid, 0, 0)
    namespaces = {new_store_namespace() for _ in range(1000)}
    assert len(namespaces) == 1000 and all(re.fullmatch(r"[0-9a-f]{10}", n) for n in namespaces)


def test_ids_made_before_namespaces_still_parse() -> None:
    assert parse_client_order_id("g0123456789ab-7-2") == ("0123456789ab", 7, 2)
    assert client_order_namespace("g0123456789ab-7-2") is None


@pytest.mark.parametrize("ns, eid, slice_index, attempt", [
    (NS, "0123456789AB", 0, 0), (NS, "0123456789a", 0, 0), (NS, "0123456789abc", 0, 0),
    (NS, "zzzzzzzzzzzz", 0, 0), (NS, "0123456789ab", -1, 0), (NS, "0123456789ab", 100_000, 0),
    (NS, "0123456789ab", 0, 1000), ("", "0123456789ab", 0, 0), ("5EED00C0DE", "0123456789ab", 0, 0),
    ("5eed00c0d", "0123456789ab", 0, 0), ("5eed00c0de0", "0123456789ab", 0, 0),
])
def test_client_order_id_refuses_out_of_range_inputs(ns: str, eid: str, slice_index: int, attempt: int) -> None:
    with pytest.raises(ValueError):
        client_order_id(ns, eid, slice_index, attempt)


@pytest.mark.parametrize("foreign", ["", "x-1-2", "g0123456789ab-1", "g0123456789ab-1-2-3",
                                     "g0123456789AB-1-2", "web_8f3a0c", "g0123456789ab-123456-0",
                                     "g5eed00c0de-0123456789ab-1", "g5eed00c0d-0123456789ab-1-2",
                                     "g5EED00C0DE-0123456789ab-1-2", "5eed00c0de-0123456789ab-1-2"])
def test_parse_client_order_id_refuses_foreign_ids(foreign: str) -> None:
    with pytest.raises(ValueError):
        parse_client_order_id(foreign)


@given(request_id=st.text(min_size=1, max_size=128))
def test_execution_ids_derive_from_the_request_id(request_id: str) -> None:
    eid = new_execution_id(request_id)
    assert eid == new_execution_id(request_id) and is_execution_id(eid)


def test_random_execution_ids_are_distinct() -> None:
    ids = {new_execution_id() for _ in range(200)}
    assert len(ids) == 200 and all(is_execution_id(i) for i in ids)
