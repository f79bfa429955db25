"""A restarted with a hedge request still unanswered publishes it again (same id), and B hedges it once."""

from __future__ import annotations

from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory


async def test_unanswered_request_is_published_again_at_start_up(ab_factory: ABFactory) -> None:
    ab = await ab_factory(shutdown_wait_s=0.5)

    async with ab.b_heartbeat_without_b():
        a = await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
        (request_id,) = published.request_ids
        assert await a.stop() == 0
        assert ab.events.matching("a", "left_unfinished", request_ids=(request_id,))
    await ab.bus.redis.delete(ab.bus.keys.requests)  # the request is lost on the way (Redis restarted)

    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "hedge_request_published", reason="start-up", request_ids=(request_id,))
    outcomes = await ab.bus.wait_outcomes([request_id], timeout_s=20)
    assert outcomes[request_id].filled
    await ab.events.wait("a", "order_placed", side="sell")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
