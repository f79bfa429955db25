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
    (published,) = await ab.events.wait("a", "hedge_request_published", reason="fill")
    (request_id,) = published.request_ids
    return request_id


async def published_again(ab: AB, request_id: str) -> None:
    """A noticed that Redis lost its data and published `request_id` again."""
    await ab.events.wait("a", "bus_data_lost", where=lambda e: request_id in e.request_ids)
    await ab.events.wait("a", "hedge_request_published", reason="Redis lost it", request_ids=(request_id,))


async def assert_hedged_once_and_flat(ab: AB, request_id: str) -> None:
    outcome = (await ab.bus.wait_outcomes([request_id], timeout_s=30))[request_id]
    assert outcome.filled and outcome.filled_size == HEDGED
    await ab.events.wait("a", "order_placed", side="sell")  # A + B was flat at the cycle start: A closes
    assert await ab.position(A_ACCOUNT) == HEDGED
    assert await ab.position(B_ACCOUNT) == -HEDGED
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # one hedge order ever reached the exchange


async def test_unread_request_is_published_again_and_hedged_once(own_redis: RedisProcess,
                                                                 ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.bus.hold_hedger("the test keeps the request unread", by="test")
    await ab.events.wait("b", "held", by="test")
    await ab.fill_a("sell")
    request_id = await request_of_the_fill(ab)
    assert await ab.bus.redis.xlen(ab.bus.keys.requests) == 1 and await ab.bus.pending_count() == 0

    own_redis.restart_empty()  # the request, the hold and A's epoch marker are gone

    (lost,) = await ab.events.wait("a", "bus_data_lost")
    assert lost.reason is not None and "run id changed" in lost.reason and "data is gone" in lost.reason
    await published_again(ab, request_id)
    await assert_hedged_once_and_flat(ab, request_id)


async def test_request_read_but_not_answered_is_hedged_once(own_redis: RedisProcess,
                                                            ab_factory: ABFactory) -> None:
    bumps = {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}
    ab = await ab_factory({"speed_bumps": {"enabled": True, "premium": bumps}}, redis_url=own_redis.url)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    request_id = await request_of_the_fill(ab)
    await ab.events.wait("b", "hedge_attempt", request_ids=(request_id,), attempt=1)  # in the speed bump

    own_redis.restart_empty()  # B's delivery, its pending entry and the request are gone

    await ab.events.wait("a", "bus_data_lost")
    await assert_hedged_once_and_flat(ab, request_id)


async def test_b_down_when_redis_loses_its_data_hedges_once_when_back(own_redis: RedisProcess,
                                                                      ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    async with ab.b_heartbeat_without_b():  # B is down; A trades while B's heartbeat is there
        await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        await ab.fill_a("sell")
        request_id = await request_of_the_fill(ab)
        own_redis.restart_empty()
        await published_again(ab, request_id)
    assert await ab.bus.redis.xlen(ab.bus.keys.requests) == 1  # the request is in the new Redis

    await ab.start_b()
    await assert_hedged_once_and_flat(ab, request_id)


async def test_b_hedges_from_its_journal_when_its_stored_outcome_is_lost(own_redis: RedisProcess,
                                                                        ab_factory: ABFactory) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    await ab.start_b()
    await ab.events.wait("b", "ready")
    coid = make_coid(Role.A, Purpose.REBALANCE, 1)
    request = HedgeRequest.for_residual(pair=ab.config.pair, market="BTC", market_id=BTC, side="sell",
                                        size=HEDGED, a_client_order_index=coid, seen_ts_ms=now_ms())
    await ab.bus.publish_request(request)
    assert (await ab.bus.wait_outcomes([request.request_id], timeout_s=20))[request.request_id].filled

    own_redis.restart_empty()  # B's stored outcome is gone with the rest
    await ab.bus.publish_request(request)  # as A does when it notices

    await ab.events.wait("b", "hedge_resumed", request_ids=(request.request_id,), count=1)  # from its journal
    again = (await ab.bus.wait_outcomes([request.request_id], timeout_s=20))[request.request_id]
    assert again.filled and again.filled_size == HEDGED
    assert await ab.position(B_ACCOUNT) == -HEDGED
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
