"""No wash trades: B's hedge never trades with A's resting maker order, whatever the order size.

Read from the simulator's own trade records (both parties named), never from the bot's logs.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedge_strategy.bus.resting import read_resting
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory


async def test_b_waits_for_a_partly_filled_order_at_the_touch_and_never_trades_with_it(
        ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.002")  # 10 lots of the BTC minimum
    await ab.start_b()
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy")
    resting = await read_resting(ab.bus)  # published before the order was sent
    assert resting is not None and resting.client_order_index == placed.coid and resting.side == "buy"
    # A's cancel of the remainder is refused once by the sequencer: the remainder rests on (A sends it
    # again 5 s later), the best bid, while B hedges the part that filled. Without the guard B's IOC would
    # sell into it.
    await ab.sim.faults(sequencer_reject_next={"count": 1, "account_index": A_ACCOUNT})
    await ab.fill_a("sell", a_part="0.0004")
    (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
    await ab.logs.wait("A's maker order rests at the touch")
    await ab.events.wait("a", "hedge_outcome_received", state="filled", request_ids=published.request_ids,
                         timeout_s=30)

    assert await ab.wash_trades() == []
    assert await ab.position(A_ACCOUNT) == Decimal("0.0004")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0004")
    # Cleared once the order was final (A's next order, placed as soon as the outcome came, may name itself).
    left = await read_resting(ab.bus)
    assert left is None or left.client_order_index != placed.coid


async def test_a_cancels_the_remainder_of_a_partly_filled_order_at_once(ab_factory: ABFactory) -> None:
    ab = await ab_factory(quantity="0.002")
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        (placed,) = await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell", a_part="0.0004")
        await ab.logs.wait("partly filled .* the remainder is cancelled")
        (ended,) = await ab.events.wait("a", "order_ended", coid=placed.coid)
    assert ended.state == "canceled" and ended.filled == Decimal("0.0004")
    assert await ab.open_orders(A_ACCOUNT) == []


# The shipped config's market flow (config.yaml `sim.flow`): takers of 1-3 lots, so a 10-lot order of A fills
# in parts, and each part is hedged by B while the rest of A's order may still be there.
DEFAULT_FLOW = {"enabled": True, "tick_interval_ms": 100, "volatility_bps": 0.3, "liquidity_levels": 10,
                "liquidity_spacing_ticks": 2, "liquidity_size": "0.5", "taker_rate_per_s": 1.5,
                "taker_size_min_lots": 1, "taker_size_max_lots": 3}
HEDGES = 40  # about two minutes of the default flow with 10-lot orders (15 took 45 s)


@pytest.mark.timeout(330)  # two minutes of trading, then both stopped
async def test_ten_lot_orders_on_the_default_flow_never_trade_a_with_b(ab_factory: ABFactory) -> None:
    ab = await ab_factory({"flow": DEFAULT_FLOW}, quantity="0.002")
    b = await ab.start_b()
    a = await ab.start_a()
    await ab.events.wait("a", "hedge_outcome_received", count=HEDGES, state="filled", timeout_s=280)
    assert await a.stop() == 0
    assert await b.stop() == 0

    state = await ab.sim.state()
    a_fills = state["accounts"][str(A_ACCOUNT)]["fills"]  # every trade of A, in the simulator's records
    between = [t for t in a_fills if {t["bid_account_id"], t["ask_account_id"]} == {A_ACCOUNT, B_ACCOUNT}]
    assert between == []
    partly = [e for e in ab.events.matching("a", "order_ended") if 0 < e.filled < e.size]
    assert partly, "no order of A filled in parts: the case this test is about did not happen"
    assert await ab.position(A_ACCOUNT) + await ab.position(B_ACCOUNT) == 0
    assert await ab.open_orders(A_ACCOUNT) == []
