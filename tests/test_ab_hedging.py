"""Hedging under stress: partial fills hedged per increment, B away when A fills."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, ABFactory

# A cancels its resting order when B's heartbeat is gone, once Redis has answered A for a whole TTL while
# the order rests (`maker_b_watch`). This test is about a fill made before A knows: A's TTL is long.
B_JUDGED_AFTER_S = 30


async def test_partial_fills_are_published_one_request_per_increment(ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.0004")

    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0004"))
        # A cancels a partly filled order's remainder at once (no wash trades); the sequencer refuses it here
        # (A cancels again only RECANCEL_AFTER_S later), so it rests on.
        await ab.sim.faults(sequencer_reject_next={"count": 3, "account_index": A_ACCOUNT})
        await ab.fill_a("sell", a_part="0.0002")
        await ab.events.wait("a", "hedge_request_published", reason="fill", size=Decimal("0.0002"))
        # The request went out while the order still rests with the rest unfilled.
        (resting,) = await ab.open_orders(A_ACCOUNT)
        assert Decimal(resting["filled_base_amount"]) == Decimal("0.0002")
        assert Decimal(resting["remaining_base_amount"]) == Decimal("0.0002")

        await ab.sim.trade(BTC, "sell", "0.0002", price=resting["price"])  # A is first in its level now
        await ab.events.wait("a", "hedge_request_published", count=2, reason="fill", size=Decimal("0.0002"))
        await ab.sim.clear_faults()
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
    await ab.start_a(heartbeat_ttl_s=B_JUDGED_AFTER_S)
    await ab.events.wait("a", "order_placed", side="buy")
    assert await b.stop() == 0
    await ab.fill_a("sell")
    (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
    # A is waiting on the hedge, and says that B's heartbeat is absent.
    await ab.events.wait("a", "hedge_waiting", count=2, peer_up=False, request_ids=published.request_ids)
    assert len(await ab.create_orders(A_ACCOUNT)) == 1  # nothing new while the hedge is outstanding
    assert await ab.open_orders(A_ACCOUNT) == []

    await ab.start_b()
    await ab.events.wait("a", "hedge_outcome_received", state="filled", request_ids=published.request_ids)
    await ab.events.wait("a", "order_placed", side="sell")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # hedged exactly once
