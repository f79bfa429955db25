"""B's wash guard while A modifies its resting order (`maker_reprice`): the entry A publishes before the
modify bounds B's IOC so that it can match the order at neither its old nor its new price; once the exchange
shows the new price, A's narrowed entry bounds B by that price alone. B's side as it is (fakeredis)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedge_strategy.bus.resting import RestingOrder, publish_resting
from hedge_strategy.exchange import Purpose, Role, Side, make_coid
from hedge_strategy.maker_reprice import bounding_price
from hedge_strategy.wash_guard import WashGuard
from tests.fixtures.fake_orders import UnitFactory

TICK = Decimal("0.1")
SIZE = Decimal("0.0002")
A_ORDER = make_coid(Role.A, Purpose.MAKER, 5)


def can_match(a_side: Side, a_price: Decimal, b_limit: Decimal) -> bool:
    """Whether B's IOC (the other side) limited at `b_limit` reaches A's order at `a_price`."""
    return b_limit <= a_price if a_side is Side.BUY else b_limit >= a_price


@pytest.mark.parametrize("a_side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("old, new", [("95000.0", "94990.0"), ("95000.0", "95010.0")])
async def test_while_a_modify_is_in_flight_b_can_match_neither_price(
        unit_factory: UnitFactory, a_side: Side, old: str, new: str) -> None:
    kit = await unit_factory("b")
    guard = WashGuard(kit.bus)
    before, after = Decimal(old), Decimal(new)
    b_side = a_side.opposite

    in_flight = RestingOrder(A_ORDER, a_side.value, bounding_price(a_side, before, after), SIZE)
    await publish_resting(kit.peer, in_flight)  # A, before the modify is sent
    limit = await guard.bound(b_side, TICK)
    assert limit is not None
    assert not can_match(a_side, before, limit) and not can_match(a_side, after, limit)

    await publish_resting(kit.peer, RestingOrder(A_ORDER, a_side.value, after, SIZE))  # the price is shown
    narrowed = await guard.bound(b_side, TICK)
    assert narrowed == (after + TICK if b_side is Side.SELL else after - TICK)  # by the new price alone
