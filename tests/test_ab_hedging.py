"""Hedging under stress: partial fills hedged per increment, B away when A fills."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, ABFactory


async def test_partial_fills_are_published_one_request_per_increment(ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.0004")

    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy 0\.0004")
        await ab.fill_a("sell", a_part="0.0002")
        await ab.logs.wait(r"^A fill 0\.00020 .*hedge request \S+ published")
        # The request went out while the order still rests with the rest unfilled.
        (resting,) = await ab.open_orders(A_ACCOUNT)
        assert Decimal(resting["filled_base_amount"]) == Decimal("0.0002")
        assert Decimal(resting["remaining_base_amount"]) == Decimal("0.0002")

        await ab.sim.trade(BTC, "sell", "0.0002", price=resting["price"])  # A is first in its level now
        await ab.logs.wait(r"^A fill 0\.00020 .*hedge request \S+ published", count=2)
    entries = await ab.bus.redis.xrange(ab.bus.keys.requests)
    requests = [HedgeRequest.from_json(fields[b"data"]) for _, fields in entries]
    assert [r.size for r in requests] == [Decimal("0.0002"), Decimal("0.0002")]
    assert len({r.request_id for r in requests}) == 2 and all(r.side == "sell" for r in requests)
    assert all(r.seen_ts_us > 0 for r in requests)

    await ab.start_b()
    outcomes = await ab.bus.wait_outcomes([r.request_id for r in requests], timeout_s=20)
    assert all(outcomes[r.request_id].filled for r in requests)
    assert await ab.position(A_ACCOUNT) == Decimal("0.0004")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0004")


async def test_b_away_when_a_fills_a_places_nothing_and_b_back_hedges_once(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    b = await ab.start_b()
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    assert await b.stop() == 0
    await ab.fill_a("sell")
    await ab.logs.wait(r"^A fill .*hedge request \S+ published")
    await ab.logs.wait(r"^A still waiting .*B's heartbeat is absent", count=2)  # A is waiting on the hedge
    assert len(await ab.create_orders(A_ACCOUNT)) == 1  # nothing new while the hedge is outstanding
    assert await ab.open_orders(A_ACCOUNT) == []

    await ab.start_b()
    await ab.logs.wait(r"^A: B hedged")
    await ab.logs.wait(r"^A placed post-only sell")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # hedged exactly once
