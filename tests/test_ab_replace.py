"""A's resting order is cancelled and replaced when too old or too far from its depth-N price, and a fill
that races the cancel is still hedged (one request per fill, A + B flat)."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, ABFactory

# The race's window: the test's forced trade must reach the order before the cancel does, even on a loaded
# machine (a sim state read and a trade: well under a second idle, seconds on 2 busy cores).
SLOW_CANCEL = {"speed_bumps": {"enabled": True, "premium": {"maker_ms": 0, "cancel_ms": 5000, "taker_ms": 0}}}


async def test_an_order_older_than_the_timeout_is_cancelled_and_replaced(ab_factory: ABFactory) -> None:
    ab = await ab_factory(maker_order_timeout_s=1.5)
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        (placed,) = await ab.events.wait("a", "order_placed", side="buy")
        await ab.events.wait("a", "cancel_sent", coid=placed.coid, reason="older than 1.5 s",
                             state="accepted")
        await ab.events.wait("a", "order_ended", coid=placed.coid, state="canceled")
        await ab.events.wait("a", "order_placed", count=2, side="buy")
        assert len(await ab.open_orders(A_ACCOUNT)) == 1  # the replacement rests, the old one is gone
    assert len(await ab.create_orders(A_ACCOUNT)) >= 2


async def test_an_order_whose_price_drifted_is_cancelled_and_replaced(ab_factory: ABFactory) -> None:
    ab = await ab_factory(max_price_drift_ticks=5)
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        (placed,) = await ab.events.wait("a", "order_placed", side="buy")
        (first,) = await ab.open_orders(A_ACCOUNT)
        first_price = Decimal(first["price"])
        await ab.sim.set_price(BTC, str(first_price + Decimal("5.0")))  # 50 ticks up: the ladder follows

        await ab.events.wait("a", "cancel_sent", coid=placed.coid,
                             where=lambda e: (e.reason or "").startswith("depth-1 price moved to "))
        await ab.events.wait("a", "order_placed", count=2, side="buy")
        (second,) = await ab.open_orders(A_ACCOUNT)
    assert Decimal(second["price"]) - first_price > Decimal("0.5")  # re-priced more than 5 ticks higher


async def test_a_fill_racing_the_cancel_is_still_hedged(ab_factory: ABFactory) -> None:
    ab = await ab_factory(SLOW_CANCEL, maker_order_timeout_s=1)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy")
    # The cancel is accepted but waits 5 s in the speed bump: the order can still fill meanwhile.
    await ab.events.wait("a", "cancel_sent", coid=placed.coid, reason="older than 1 s", state="accepted")
    await ab.fill_a("sell")

    await ab.events.wait("a", "order_ended", coid=placed.coid, state="filled")  # the fill won the race
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    await ab.events.wait("a", "order_placed", side="sell")  # trades on from a flat A + B
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    entries = await ab.bus.redis.xrange(ab.bus.keys.requests)
    requests = [HedgeRequest.from_json(fields[b"data"]) for _, fields in entries]
    assert [(r.side, r.size) for r in requests] == [("sell", Decimal("0.0002"))]  # one request per fill
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
