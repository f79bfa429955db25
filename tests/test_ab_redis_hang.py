"""A Redis that hangs rather than refuses (`redis-server` under SIGSTOP) never stalls A's trading: A still
processes the exchange's events (it sees its fill and records the hedge request in its outbox) and cancels
the rest of its partly filled order (as it always does, so that B never has to cross it); once Redis runs
again the request goes out and is hedged exactly once. A resting order Redis leaves unanswered for the bound
(`maker_b_watch`: a fill could not reach B) is cancelled, and A trades again once Redis runs. That runs with
B's hedge from the trade feed off; with it on (the default), B hedges the fill from the exchange's public
trade feed while Redis is still frozen (its hedge at once, feed first, sends nothing: B's read of A's
wash-guard key gets no answer, so the feed's wait takes it), and A's request, once Redis runs, is answered
without a second hedge.
"""

from __future__ import annotations

from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory
from tests.fixtures.redis import RedisProcess

MAKER_TIMEOUT_S = 4
SILENT_TEST_ORDER_TIMEOUT_S = 30
# Shorter client timeouts than the shipped ones (3 s x 3 tries): what is under test is that a hung Redis
# stalls neither A nor the hedge, not how long the client takes to give up. 2 s stays above B's 1 s
# blocking read of requests, so B's reads do not time out while Redis runs.
REDIS_CLIENT = {"socket_timeout_s": 2, "connect_timeout_s": 1, "retries": 1}
HANG_WAIT_S = 40.0  # bounds each wait while Redis is frozen (the client's timeouts and retries take ~4 s)


async def test_a_frozen_redis_neither_stalls_the_resting_order_nor_loses_the_fill(
    own_redis: RedisProcess, ab_factory: ABFactory
) -> None:
    # The order's own timeout well past the silence bound (3 s): with 4 s the closing order below could be
    # cancelled for its age before Redis's silence was judged, and the test then waited for a cancel that
    # had already happened for another reason.
    ab = await ab_factory(redis_url=own_redis.url, redis=REDIS_CLIENT, quantity="0.0004",
                          maker_order_timeout_s=SILENT_TEST_ORDER_TIMEOUT_S,
                          hedge_from_trade_feed_after_s=None, hedge_from_trade_feed_first=False)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0004"))

    own_redis.freeze()
    try:
        await ab.fill_a("sell", a_part="0.0002")  # half of A's order: A cancels the rest
        # The fill's hedge request waits in the outbox: publishing it times out on the frozen Redis...
        (unavailable,) = await ab.events.wait("a", "redis_unavailable", timeout_s=HANG_WAIT_S)
        assert "TimeoutError" in (unavailable.reason or "") and unavailable.count == 1
        # ... while the exchange's events are processed (the fill reached the order) and the resting order is
        # still watched: its remainder is cancelled through the exchange, Redis or not.
        await ab.events.wait("a", "cancel_sent", coid=placed.coid, timeout_s=HANG_WAIT_S,
                             where=lambda event: "partly filled" in (event.reason or ""))
        await ab.events.wait("a", "order_ended", coid=placed.coid, state="canceled", filled=Decimal("0.0002"),
                             timeout_s=HANG_WAIT_S)
        assert await ab.open_orders(A_ACCOUNT) == []
        assert not ab.events.matching("a", "hedge_request_published")  # nothing got through Redis
        assert not ab.events.matching("b", "hedge_attempt")
    finally:
        own_redis.thaw()

    # The request goes out (the XADD the frozen server had buffered may even run first), B hedges it.
    # Bounded like the waits above: calls in flight when Redis froze still run out their timeouts and
    # retries (socket_timeout_s x (retries + 1) each) after it thaws, holding the outbox's lock meanwhile.
    await ab.events.wait("a", "hedge_outcome_received", side="sell", size=Decimal("0.0002"), state="filled",
                         timeout_s=2 * HANG_WAIT_S)
    (closing,) = await ab.events.wait("a", "order_placed", side="sell")  # flat again: A closes its long
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # hedged once, though the request may be sent twice

    # Redis freezes again while that order rests: once Redis has answered nothing for the bound (three beat
    # periods: 3 s here), A cancels it through the exchange, since a fill could not reach B; it places nothing
    # until Redis answers again, then trades on.
    own_redis.freeze()
    try:
        (silent,) = await ab.events.wait("a", "redis_silent", timeout_s=HANG_WAIT_S)
        assert silent.coid == closing.coid and not ab.events.matching("a", "heartbeat_absent")
        await ab.events.wait("a", "cancel_sent", coid=closing.coid, timeout_s=HANG_WAIT_S,
                             where=lambda event: event.reason == silent.reason)
        await ab.events.wait("a", "order_ended", coid=closing.coid, state="canceled", timeout_s=HANG_WAIT_S)
        assert await ab.open_orders(A_ACCOUNT) == []
        assert len(ab.events.matching("a", "order_placed")) == 2
    finally:
        own_redis.thaw()
    await ab.events.wait("a", "order_placed", count=3, timeout_s=HANG_WAIT_S)  # trading goes on

async def test_b_hedges_from_the_trade_feed_while_redis_is_frozen_and_never_twice(
    own_redis: RedisProcess, ab_factory: ABFactory
) -> None:
    ab = await ab_factory(redis_url=own_redis.url, redis=REDIS_CLIENT, maker_order_timeout_s=MAKER_TIMEOUT_S,
                          hedge_from_trade_feed_after_s=1)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    (placed,) = await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0002"))

    own_redis.freeze()
    try:
        await ab.fill_a("sell")  # all of A's order: A is long, its request stuck behind the frozen Redis
        (feed,) = await ab.events.wait("b", "hedge_from_feed", side="sell", size=Decimal("0.0002"),
                                       timeout_s=HANG_WAIT_S)
        (request_id,) = feed.request_ids
        assert request_id.startswith(f"{placed.coid}-")  # A's maker order and the trade: A's own request id
        await ab.events.wait("b", "order_ended", state="filled", filled=Decimal("0.0002"),
                             timeout_s=HANG_WAIT_S)
        assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")  # flat again, Redis still frozen
        assert not ab.events.matching("a", "hedge_request_published")
    finally:
        own_redis.thaw()

    # A's request goes out; B knows it (its outcome, published once Redis answered) and hedges nothing more.
    await ab.events.wait("a", "hedge_outcome_received", request_ids=(request_id,), state="filled",
                         timeout_s=2 * HANG_WAIT_S)
    await ab.events.wait("b", "request_already_answered", request_ids=(request_id,),
                         timeout_s=2 * HANG_WAIT_S)
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # one hedge, from the feed
    assert await ab.wash_trades() == []
