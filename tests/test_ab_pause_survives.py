"""A pause survives a Redis that loses its data: A keeps a copy in its journal and sets it again, while it
runs and at its next start. Redis owns the truth while it has its data: an operator's resume is copied at
once and never undone by A's copy.
"""

from __future__ import annotations

from tests.fixtures.ab import A_ACCOUNT, ABFactory
from tests.fixtures.redis import RedisProcess


async def test_pause_is_set_again_after_redis_lost_it_and_a_resume_is_not_undone(
    own_redis: RedisProcess, ab_factory: ABFactory
) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    async with ab.b_heartbeat_without_b():
        await ab.start_a()
        (first,) = await ab.events.wait("a", "order_placed", side="buy")
        pause = await ab.bus.set_pause("operator: stop for now", by="ctl")  # what `hedgectl pause` does
        await ab.events.wait("a", "cancel_sent", coid=first.coid, reason="trading is paused")
        await ab.events.wait("a", "paused", by="ctl")

        own_redis.restart_empty()
        await ab.events.wait("a", "pause_restored", by="ctl", reason="operator: stop for now")
        assert await ab.bus.get_pause() == pause  # as it was: reason, who, since when
        assert len(await ab.create_orders(A_ACCOUNT)) == 1

        await ab.bus.clear_pause()  # what `hedgectl resume` does: A's copy follows
        await ab.events.wait("a", "resumed")
        (second,) = await ab.events.wait("a", "order_placed", side="buy",
                                         where=lambda e: e.coid != first.coid)
        own_redis.restart_empty()
        await ab.events.wait("a", "bus_data_lost", count=2)
        await ab.logs.wait(r"^A: Redis lost its data; A's journal holds no pause to set again \(trading is "
                           r"allowed\)")
        assert await ab.bus.get_pause() is None
    assert len(ab.events.matching("a", "pause_restored")) == 1
    assert not ab.events.matching("a", "cancel_sent", coid=second.coid, reason="trading is paused")


async def test_pause_is_set_again_at_start_when_redis_lost_it_while_a_was_down(
    own_redis: RedisProcess, ab_factory: ABFactory
) -> None:
    ab = await ab_factory(redis_url=own_redis.url)
    async with ab.b_heartbeat_without_b():
        a = await ab.start_a()
        await ab.events.wait("a", "order_placed", side="buy")
        pause = await ab.bus.set_pause("operator: hold on", by="ctl")
        await ab.events.wait("a", "paused", by="ctl")
        assert await a.stop() == 0

        own_redis.restart_empty()  # as ./stop_hedge.sh then ./start_hedge.sh do to the Redis they run
        await ab.start_a()
        await ab.events.wait("a", "pause_restored", by="ctl", reason="operator: hold on")
        await ab.events.wait("a", "paused", by="ctl", count=2)
        assert await ab.bus.get_pause() == pause
    assert len(await ab.create_orders(A_ACCOUNT)) == 1  # nothing placed by the second A
