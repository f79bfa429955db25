"""A silent account stream (issue 9): A's resting order fills while the venue sends A nothing at all, for
longer than the heartbeat; A finds the fill by its REST look at the order, and B hedges it.

The pacing of those looks is unit-tested in test_maker_rest_check.py; how fast this is, bench/chaos.py
measures (`ws_silence`).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory

SILENCE_S = 120  # far beyond the heartbeat (5 s): ended by the test once the hedge is in
LONG_WAIT_S = 40.0  # generous: a loaded machine


async def test_a_fill_during_a_silence_is_found_by_the_rest_check_and_hedged(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    # Periodic reconciliation far away, so that it cannot be what finds the fill; the reconnect's
    # reconciliation cannot either: the link stays down until the silence ends, after the hedge.
    ab.config = replace(ab.config, exchange=replace(ab.config.exchange, reconcile_interval_s=600))
    await ab.start_b()
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy")

    # Only A's account connection goes silent (no frames, no pings); its book and B's connections go on.
    await ab.sim.faults(silence_ws_s=SILENCE_S, account_index=A_ACCOUNT)
    trades = await ab.fill_a("sell")
    (a_trade,) = [t for t in trades if A_ACCOUNT in (t["bid_account_id"], t["ask_account_id"])]

    # The look that found it is the first to record the trade (the journal counts a trade once, whoever
    # reports it): neither the stream nor a reconciliation had it before.
    (found,) = await ab.events.wait("a", "resting_checked", coid=placed.coid, timeout_s=LONG_WAIT_S,
                                    where=lambda e: bool(e.count))
    assert found.count == 1 and found.filled == Decimal("0.0002")
    (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill", coid=placed.coid,
                                        timeout_s=LONG_WAIT_S)
    assert str(a_trade["trade_id"]) in published.request_ids[0]
    await ab.events.wait("b", "hedge_done", state="filled", request_ids=published.request_ids,
                         timeout_s=LONG_WAIT_S)
    await ab.events.wait("a", "hedge_outcome_received", state="filled", request_ids=published.request_ids,
                         timeout_s=LONG_WAIT_S)
    await ab.sim.clear_faults()

    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # hedged once
