"""SIGTERM with work in flight: B finishes the hedge in hand and acknowledges it; A waits (bounded) for the
outcome of its outstanding hedge. Both exit 0, nothing left pending. The taker speed bump keeps B's IOC in
flight long enough for the signal to land in the middle of it."""

from __future__ import annotations

import signal
from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory

SLOW_TAKER = {"speed_bumps": {"enabled": True, "premium": {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}}}


async def test_sigterm_to_b_mid_hedge_finishes_it_publishes_and_exits_0(ab_factory: ABFactory) -> None:
    # B's request path: feed first, the hedge in hand is the feed's, and A's request may still be unread
    # when B stops (left pending for the next B, which answers it from the outcome: not what is counted here).
    ab = await ab_factory(SLOW_TAKER, shutdown_wait_s=8, hedge_from_trade_feed_first=False)
    b = await ab.start("b", in_process=False)
    await ab.events.wait("b", "ready")
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    (sent,) = await ab.events.wait("b", "hedge_attempt", attempt=1, side="sell")  # in the 2.5 s speed bump
    await b.send(signal.SIGTERM)

    assert await b.wait() == 0  # every event B wrote has been read
    assert ab.events.matching("b", "stopping", reason="finishing the hedge in hand")
    assert ab.events.matching("b", "hedge_done", state="filled", request_ids=sent.request_ids, count=1)
    assert ab.events.matching("b", "stopped", reason="cleanly", count=1)
    assert not ab.events.matching("b", "left_unfinished")
    assert await ab.bus.pending_count() == 0
    await ab.events.wait("a", "hedge_outcome_received", state="filled")  # A has its outcome
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1


async def test_sigterm_to_a_with_a_hedge_outstanding_waits_for_it_and_exits_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory(SLOW_TAKER, shutdown_wait_s=8)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    a = await ab.start("a", in_process=False)
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
    await ab.events.wait("b", "hedge_attempt", attempt=1, side="sell")  # B's IOC is in the speed bump
    await a.send(signal.SIGTERM)

    assert await a.wait() == 0  # every event A wrote has been read
    assert ab.events.matching("a", "stopping", waited_s=8, request_ids=published.request_ids)
    assert ab.events.matching("a", "hedge_outcome_received", state="filled",
                              request_ids=published.request_ids)
    assert ab.events.matching("a", "stopped", reason="cleanly")
    assert not ab.events.matching("a", "left_unfinished")
    assert await ab.bus.pending_count() == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
