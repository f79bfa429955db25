"""A's resting order is cancelled and replaced when too old, modified in place (one ModifyOrder) when the book
moved away from it, and a fill that races the cancel, or follows the modify, is still hedged (one request per
fill, A + B flat)."""

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


async def test_an_order_the_book_moved_away_from_is_modified_in_place_and_its_fill_hedged(
        ab_factory: ABFactory) -> None:
    ab = await ab_factory(max_price_drift_ticks=5)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy")
    first_price = placed.price
    assert first_price is not None
    await ab.sim.set_price(BTC, str(first_price + Decimal("5.0")))  # 50 ticks up: the ladder follows

    (modified,) = await ab.events.wait("a", "modify_sent", coid=placed.coid, state="accepted")
    assert modified.price is not None and modified.price - first_price > Decimal("0.5")  # > 5 ticks higher
    assert (modified.reason or "").startswith(f"A's price now is {modified.price}")
    trades = await ab.fill_a("sell")  # the order as the exchange has it, at its new price
    assert {Decimal(t["price"]) for t in trades if A_ACCOUNT == t["bid_account_id"]} == {modified.price}

    await ab.events.wait("a", "order_ended", coid=placed.coid, state="filled")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")  # the fill after the modify, hedged
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    # From the simulator's records: A's order was created once and modified once (tx type 17), never
    # cancelled and created again before it filled.
    log = (await ab.sim.txlog(A_ACCOUNT))[str(A_ACCOUNT)]
    types = [r["tx_type"] for r in log if r["status"] == "accepted"]
    assert types[:2] == [14, 17] and 15 not in types[:3], types
    assert len([kind for kind in types if kind == 17]) == 1


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
