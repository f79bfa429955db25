"""Unit tests: client order index layout and MarketInfo scaling."""

from decimal import Decimal

import pytest

from hedge_strategy.exchange.coid import (
    MAX_CLIENT_ORDER_INDEX,
    Purpose,
    Role,
    derived_number,
    describe_coid,
    make_coid,
    parse_coid,
)
from hedge_strategy.exchange.events import Side
from hedge_strategy.exchange.markets import MarketInfo

BTC = MarketInfo("BTC", 1, size_decimals=5, price_decimals=1,
                 min_base_amount=Decimal("0.00020"), min_quote_amount=Decimal("10"))


def test_coid_layout_matches_design_example() -> None:
    assert make_coid(Role.A, Purpose.MAKER, 42) == 11000000000042
    assert make_coid(Role.B, Purpose.HEDGE, 7) == 22000000000007
    assert make_coid(Role.OPERATOR, Purpose.CLOSE, 1) == 33000000000001


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("number", [0, 1, 123456789, 10**12 - 1])
def test_coid_round_trip_and_bound(role: Role, purpose: Purpose, number: int) -> None:
    coid = make_coid(role, purpose, number)
    assert 0 < coid <= MAX_CLIENT_ORDER_INDEX
    assert len(str(coid)) == 14
    assert parse_coid(coid) == (role, purpose, number)


def test_coid_rejects_numbers_outside_twelve_digits() -> None:
    with pytest.raises(ValueError):
        make_coid(Role.A, Purpose.MAKER, 10**12)
    with pytest.raises(ValueError):
        make_coid(Role.A, Purpose.MAKER, -1)


def test_roles_never_collide() -> None:
    assert make_coid(Role.A, Purpose.HEDGE, 5) != make_coid(Role.B, Purpose.HEDGE, 5)


def test_parse_rejects_foreign_indexes() -> None:
    for foreign in (0, 5, 91000000000001, 15000000000001, 2**48 + 3):
        with pytest.raises(ValueError):
            parse_coid(foreign)


def test_describe_coid() -> None:
    assert describe_coid(11000000000042) == "A/maker#42"
    assert describe_coid(22000000000007) == "B/hedge#7"
    assert describe_coid(34000000000009) == "op/rebalance#9"
    assert describe_coid(123) == "foreign#123"


def test_derived_number_is_stable_and_spread() -> None:
    first = derived_number("1712345678901-0:attempt1")
    assert first == derived_number("1712345678901-0:attempt1")
    assert 0 <= first < 10**12
    assert first != derived_number("1712345678901-0:attempt2")
    assert len({derived_number(f"req{i}") for i in range(1000)}) == 1000


def test_side_opposite() -> None:
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY
    assert Side.from_is_ask(True) is Side.SELL


def test_market_tick_and_lot() -> None:
    assert BTC.tick == Decimal("0.1")
    assert BTC.lot == Decimal("0.00001")


def test_market_scaling_exact() -> None:
    assert BTC.base_to_int(Decimal("0.0002")) == 20
    assert BTC.base_to_int(Decimal("1.23456")) == 123456
    assert BTC.price_to_int(Decimal("95000.1")) == 950001
    assert BTC.price_to_int(Decimal("95000.10000")) == 950001
    assert BTC.base_from_int(20) == Decimal("0.0002")
    assert str(BTC.base_from_int(20)) == "0.00020"
    assert str(BTC.price_from_int(950001)) == "95000.1"


def test_market_scaling_rejects_off_grid_values() -> None:
    with pytest.raises(ValueError):
        BTC.base_to_int(Decimal("0.000025"))
    with pytest.raises(ValueError):
        BTC.price_to_int(Decimal("95000.15"))
    with pytest.raises(ValueError):
        BTC.price_to_int(Decimal("NaN"))
    with pytest.raises(TypeError):
        BTC.price_to_int(95000.1)  # type: ignore[arg-type]


def test_round_price_directions() -> None:
    assert BTC.round_price(Decimal("95000.12"), side_up=True) == Decimal("95000.2")
    assert BTC.round_price(Decimal("95000.19"), side_up=False) == Decimal("95000.1")
    assert BTC.round_price(Decimal("95000.1"), side_up=True) == Decimal("95000.1")


def test_market_from_detail() -> None:
    detail = {"symbol": "ETH", "market_id": 0, "size_decimals": 4, "price_decimals": 2,
              "min_base_amount": "0.0050", "min_quote_amount": "10.000000", "unknown": 1}
    eth = MarketInfo.from_detail(detail)
    assert eth == MarketInfo("ETH", 0, 4, 2, Decimal("0.005"), Decimal("10"))
