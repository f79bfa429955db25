"""A restarted with a hedge request still unanswered publishes it again (same id), and B hedges it once."""

from __future__ import annotations

from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory


async def test_unanswered_request_is_published_again_at_start_up(ab_factory: ABFactory) -> None:
    ab = await ab_factory(shutdown_wait_s=0.5)

    async with ab.b_heartbeat_without_b():
        a = await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy")
        await ab.fill_a("sell")
        (line,) = await ab.logs.wait(r"^A fill .*hedge request \S+ published")
        request_id = line.split("hedge request ")[1].split()[0]
        assert await a.stop() == 0
        assert ab.logs.matching(rf"A stopping with {request_id} unconfirmed")
    await ab.bus.redis.delete(ab.bus.keys.requests)  # the request is lost on the way (Redis restarted)

    await ab.start_b()
    await ab.start_a()
    await ab.logs.wait(rf"^A start-up: hedge request {request_id} has no outcome in Redis; publishing it")
    outcomes = await ab.bus.wait_outcomes([request_id], timeout_s=20)
    assert outcomes[request_id].filled
    await ab.logs.wait(r"^A placed post-only sell")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
