"""A Redis that loses its data (killed and started again empty on the same port, as `start_hedge.sh` runs it
without persistence) loses no fill: A notices and publishes its outstanding requests again, and B hedges each
at most once, from its stored outcome or, when that is gone too, from its journal's orders.

Each case ends with every fill of A hedged exactly once (B's hedge orders counted in the simulator's log)
and A + B flat.
"""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy.bus import HedgeRequest, now_ms
from hedge_strategy.exchange import Purpose, Role, make_coid
from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, BTC, ABFactory
from tests.fixtures.redis import RedisProcess

HEDGED = Decimal("0.0002")


async def request_of_the_fill(ab: AB) -> str:
    (line,) = await ab.logs.wait(r"^A fill .*hedge request \S+ published")
    return line.split("hedge request ")[1].split()[0]


async def assert_hedged_once_and_flat(ab: AB, request_id: str) -> None:
    outcome = (await ab.bus.wait_outcomes([request_id], timeout_s=30))[request_id]
    assert outcome.filled and outcome.filled_size == HEDGED
    await ab.logs.wait(r"^A placed post-only sell")  # A + B was flat at the cycle start: A closes its long
    assert await ab.position(A_ACCOUNT) == HEDGED
    assert await ab.position(B_ACCOUNT) == -HEDGED
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # one hedge order ever reached the exchange


async def test_unread_request_is_published_again_and_hedged_once(own_redis: RedisProcess,
                                                                 ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    await ab.bus.hold_hedger("the test keeps the request unread", by="test")
    await ab.logs.wait(r"^B held by test")
    await ab.fill_a("sell")
    request_id = await request_of_the_fill(ab)
    assert await ab.bus.redis.xlen(ab.bus.keys.requests) == 1 and await ab.bus.pending_count() == 0

    own_redis.restart_empty()  # the request, the hold and A's epoch marker are gone

    await ab.logs.wait(r"^A: Redis may have lost what A published \(Redis run id changed .*its data is gone")
    await ab.logs.wait(rf"^A \(Redis lost it\): hedge request {request_id} has no outcome in Redis")
    await assert_hedged_once_and_flat(ab, request_id)


async def test_request_read_but_not_answered_is_hedged_once(own_redis: RedisProcess,
                                                            ab_factory: ABFactory) -> None:
    bumps = {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}
    ab = await ab_factory({"speed_bumps": {"enabled": True, "premium": bumps}}, redis_url=own_redis.url)
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    await ab.fill_a("sell")
    request_id = await request_of_the_fill(ab)
    await ab.logs.wait(rf"^B hedge 1/5 IOC sell .* for {request_id}: sent_us=")  # in the 2.5 s speed bump

    own_redis.restart_empty()  # B's delivery, its pending entry and the request are gone

    await ab.logs.wait(r"^A: Redis may have lost what A published")
    await assert_hedged_once_and_flat(ab, request_id)


async def test_b_down_when_redis_loses_its_data_hedges_once_when_back(own_redis: RedisProcess,
                                                                      ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    async with ab.b_heartbeat_without_b():  # B is down; A trades while B's heartbeat is there
        await ab.start_a()
        await ab.logs.wait(r"^A placed post-only buy")
        await ab.fill_a("sell")
        request_id = await request_of_the_fill(ab)
        own_redis.restart_empty()
        await ab.logs.wait(rf"^A \(Redis lost it\): hedge request {request_id} has no outcome in Redis")
    assert await ab.bus.redis.xlen(ab.bus.keys.requests) == 1  # the request is in the new Redis

    await ab.start_b()
    await assert_hedged_once_and_flat(ab, request_id)


async def test_b_hedges_from_its_journal_when_its_stored_outcome_is_lost(own_redis: RedisProcess,
                                                                        ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    coid = make_coid(Role.A, Purpose.REBALANCE, 1)
    request = HedgeRequest.for_residual(pair=ab.config.pair, market="BTC", market_id=BTC, side="sell",
                                        size=HEDGED, a_client_order_index=coid, seen_ts_ms=now_ms())
    await ab.bus.publish_request(request)
    assert (await ab.bus.wait_outcomes([request.request_id], timeout_s=20))[request.request_id].filled

    own_redis.restart_empty()  # B's stored outcome is gone with the rest
    await ab.bus.publish_request(request)  # as A does when it notices

    await ab.logs.wait(rf"^B: requests {request.request_id} were already being hedged \(1 attempt\(s\) in "
                       r"the journal\)")
    again = (await ab.bus.wait_outcomes([request.request_id], timeout_s=20))[request.request_id]
    assert again.filled and again.filled_size == HEDGED
    assert await ab.position(B_ACCOUNT) == -HEDGED
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
