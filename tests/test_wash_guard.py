"""B's wash guard (`wash_guard.py`): which of A's published orders bound B's IOC limit; the key's format."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeRequest, now_ms
from hedge_strategy.bus.resting import RestingOrder, publish_resting, read_resting
from hedge_strategy.exchange import Purpose, Role, Side, make_coid
from hedge_strategy.wash_guard import WashGuard, covered_fills, limit_bound
from tests.fixtures.fake_orders import UnitFactory

TICK = Decimal("0.1")
LOT = Decimal("0.0002")
A_ORDER = make_coid(Role.A, Purpose.MAKER, 5)


def fill_request(trade_id: int, size: Decimal = LOT, coid: int = A_ORDER) -> HedgeRequest:
    return HedgeRequest.for_fills(pair="p", market="BTC", market_id=1, a_fill_side="buy", size=size,
                                  a_client_order_index=coid, trade_ids=[trade_id],
                                  a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())


def test_covered_fills_sums_each_request_once_per_order_and_ignores_residuals() -> None:
    first, second = fill_request(1), fill_request(2)
    other = fill_request(3, coid=make_coid(Role.A, Purpose.MAKER, 6))
    residual = HedgeRequest.for_residual(pair="p", market="BTC", market_id=1, side="sell", size=LOT,
                                         a_client_order_index=A_ORDER, seen_ts_ms=now_ms())
    covered = covered_fills([first, second, first, other, residual])
    assert covered == {A_ORDER: 2 * LOT, other.a_client_order_index: LOT}


def test_an_order_covered_for_its_whole_size_bounds_nothing_anything_less_bounds() -> None:
    bid = RestingOrder(A_ORDER, "buy", Decimal("95000.0"), 2 * LOT)
    assert limit_bound(Side.SELL, bid, TICK, {A_ORDER: 2 * LOT}) is None  # all filled: rests nowhere
    assert limit_bound(Side.SELL, bid, TICK, {A_ORDER: LOT}) == Decimal("95000.1")  # the rest may rest
    assert limit_bound(Side.SELL, bid, TICK, {A_ORDER + 1: 2 * LOT}) == Decimal("95000.1")  # another order
    assert limit_bound(Side.SELL, bid, TICK) == Decimal("95000.1")
    no_size = RestingOrder(A_ORDER, "buy", Decimal("95000.0"))
    assert limit_bound(Side.SELL, no_size, TICK, {A_ORDER: 2 * LOT}) == Decimal("95000.1")
    ask = RestingOrder(A_ORDER, "sell", Decimal("95000.0"), LOT)
    assert limit_bound(Side.BUY, ask, TICK, {A_ORDER: LOT}) is None
    assert limit_bound(Side.BUY, ask, TICK) == Decimal("94999.9")
    assert limit_bound(Side.BUY, bid, TICK) is None  # same side as A's order: never matches it


async def test_the_key_carries_the_size_and_reads_without_one(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    await publish_resting(kit.peer, RestingOrder(A_ORDER, "buy", Decimal("95000.0"), LOT))
    assert await read_resting(kit.bus) == RestingOrder(A_ORDER, "buy", Decimal("95000.0"), LOT)
    old = json.dumps({"client_order_index": A_ORDER, "side": "sell", "price": "95000.0"})  # an A before sizes
    await kit.peer.redis.set(kit.peer.keys.maker_resting, old)
    assert await read_resting(kit.bus) == RestingOrder(A_ORDER, "sell", Decimal("95000.0"), None)


async def test_the_first_bound_takes_the_early_read_the_next_ones_read_again(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    early: asyncio.Future[RestingOrder | None] = asyncio.get_running_loop().create_future()
    early.set_result(RestingOrder(A_ORDER, "buy", Decimal("95000.0"), 2 * LOT))  # read as the batch arrived
    guard = WashGuard(kit.bus).for_hedge([fill_request(1)], early)
    assert await guard.bound(Side.SELL, TICK) == Decimal("95000.1")
    assert await guard.bound(Side.SELL, TICK) is None  # the key is gone now (A's order ended)


async def test_an_early_read_that_failed_fails_the_first_bound(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    early: asyncio.Future[RestingOrder | None] = asyncio.get_running_loop().create_future()
    early.set_exception(RedisError("Redis did not answer"))
    guard = WashGuard(kit.bus).for_hedge([fill_request(1)], early)
    with pytest.raises(RedisError):  # B sends nothing it could not check
        await guard.bound(Side.SELL, TICK)


async def test_read_ahead_reads_the_key(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    await publish_resting(kit.peer, RestingOrder(A_ORDER, "sell", Decimal("95000.0"), LOT))
    assert await WashGuard(kit.bus).read_ahead() == RestingOrder(A_ORDER, "sell", Decimal("95000.0"), LOT)
