"""End to end netting: fills that wait together for B are hedged by one order on the exchange."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest
from hedge_strategy.hedger import hedge_coid
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, BTC, ABFactory


async def test_two_fills_waiting_for_b_are_hedged_by_one_order(ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.0004")
    async with ab.b_heartbeat_without_b():  # B not running yet, but A must see it to place
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0004"))
        # A cancels a partly filled order's remainder at once (no wash trades); the sequencer refuses it here
        # (A cancels again only RECANCEL_AFTER_S later), so it rests on.
        await ab.sim.faults(sequencer_reject_next={"count": 3, "account_index": A_ACCOUNT})
        await ab.fill_a("sell", a_part="0.0002")
        await ab.events.wait("a", "hedge_request_published", reason="fill", size=Decimal("0.0002"))
        (resting,) = await ab.open_orders(A_ACCOUNT)
        await ab.sim.trade(BTC, "sell", "0.0002", price=resting["price"])
        await ab.events.wait("a", "hedge_request_published", count=2, reason="fill", size=Decimal("0.0002"))
        await ab.sim.clear_faults()
    entries = await ab.bus.redis.xrange(ab.bus.keys.requests)
    first, second = (HedgeRequest.from_json(fields[b"data"]) for _, fields in entries)

    await ab.start_b()
    await ab.events.wait("b", "hedge_netted", count=1, side="sell", size=Decimal("0.0004"),
                         request_ids=(first.request_id, second.request_id))
    outcomes = await ab.bus.wait_outcomes([first.request_id, second.request_id], timeout_s=20)
    for request in (first, second):
        outcome = outcomes[request.request_id]
        assert outcome.filled and outcome.filled_size == Decimal("0.0004")
        assert outcome.request_ids == (first.request_id, second.request_id)
        # One order, named after the first request: a redelivery of either maps to the same order.
        assert outcome.hedge_client_order_indexes == (hedge_coid(first.request_id, 1),)
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # one hedge order reached the exchange
    await ab.events.wait("a", "hedge_outcome_received", state="filled", side="sell", filled=Decimal("0.0004"))
    assert await ab.position(A_ACCOUNT) == Decimal("0.0004")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0004")
    assert await ab.bus.pending_count() == 0
