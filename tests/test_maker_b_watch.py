"""A cancels its resting order when B's heartbeat is lost (`maker_b_watch.py`), and only on Redis's word; or
when Redis has answered nothing of A's for a bound (a fill could not reach B), never for one slow answer.

The decision is walked through time with a clock the test moves (`BWatch.look`, one read at a time); the
wiring runs A's real resting loop on the fake executor (`fixtures/fake_orders.py`), on real time: the unit
config's heartbeat TTL is 0.3 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from hedge_strategy.exchange import Purpose, Role, make_coid
from hedge_strategy.maker_b_watch import LOST_REASON, BWatch, silent_reason
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import UnitFactory, UnitKit

WAIT_S = 5.0  # bound on every wait for something that happens at once (or within a 0.3 s TTL)
COID = make_coid(Role.A, Purpose.MAKER, 1)


async def b_gone(kit: UnitKit) -> None:
    """B's heartbeat key gone from Redis, as when its TTL ran out after B died."""
    await kit.peer.redis.delete(kit.peer.keys.heartbeat("b"))


async def test_b_is_lost_once_redis_answers_it_is_gone_having_answered_for_a_ttl(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")
    ttl = kit.config.strategy.heartbeat_ttl_s
    clock = FakeClock()
    watch = BWatch(kit.runtime("a"), COID, clock)
    await kit.peer.beat("b", 60, {"pid": 0, "busy": True})  # a B in the middle of a hedge is alive
    await watch.look()
    assert not watch.lost

    await b_gone(kit)
    clock.now += ttl / 2
    await watch.look()
    assert not watch.lost  # Redis has answered for half a TTL only
    clock.now += 1.5 * ttl
    await watch.look()
    assert watch.lost
    (absent,) = kit.events.matching("a", "heartbeat_absent", peer="b")
    assert (absent.coid, absent.reason) == (COID, LOST_REASON)


async def test_a_redis_that_does_not_answer_or_answers_late_says_nothing_about_b(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")
    ttl = kit.config.strategy.heartbeat_ttl_s
    clock = FakeClock()
    rt = kit.runtime("a")
    watch = BWatch(rt, COID, clock)
    await b_gone(kit)  # B's key is gone, but only a Redis that answers may say so
    answer_with = rt.bus.heartbeat

    async def hung(role: str) -> dict[str, Any] | None:
        clock.now += 10 * ttl  # a read that times out, long after the TTL
        raise RedisTimeout("Timeout reading from socket")

    async def late(role: str) -> dict[str, Any] | None:
        beat = await answer_with(role)
        clock.now += watch.late_s + 1  # answered, but after Redis kept everything waiting
        return beat

    rt.bus.heartbeat = hung  # type: ignore[method-assign]
    for _ in range(3):
        await watch.look()
    rt.bus.heartbeat = late  # type: ignore[method-assign]
    await watch.look()
    assert not watch.lost

    # Redis answers promptly again: B is judged once it has answered for a whole TTL, never on its first word
    # (B's own delayed beat may land just after it).
    rt.bus.heartbeat = answer_with  # type: ignore[method-assign]
    await watch.look()
    assert not watch.lost
    clock.now += 1.5 * ttl
    await watch.look()
    assert watch.lost


async def test_a_resting_order_is_cancelled_when_b_is_lost_and_a_trades_again_when_b_is_back(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")
    await kit.peer.beat("b", 60, {"pid": 0, "busy": True})
    kit.orders.hold_waits = True  # the order rests until something happens to it
    maker = kit.maker()
    reads = asyncio.Event()
    looks: list[bool] = []
    answer_with = kit.bus.heartbeat

    async def counted(role: str) -> dict[str, Any] | None:
        beat = await answer_with(role)
        if role == "b":
            looks.append(beat is not None)
            if len(looks) >= 3:
                reads.set()
        return beat

    kit.bus.heartbeat = counted  # type: ignore[method-assign]
    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    await asyncio.wait_for(reads.wait(), WAIT_S)  # B's heartbeat, read while the order rests: B is busy
    assert kit.orders.cancelled == []

    await b_gone(kit)
    await asyncio.wait_for(cycle, WAIT_S)  # cancelled, so the cycle ends
    assert kit.orders.cancelled == [(placed.coid, LOST_REASON)]
    (absent,) = kit.events.matching("a", "heartbeat_absent", peer="b")
    assert absent.coid == placed.coid

    await maker.cycle()  # B still gone: nothing placed, and no second line or event for this absence
    assert len(kit.orders.sent) == 1 and len(kit.events.matching("a", "heartbeat_absent")) == 1

    await kit.peer.beat("b", 60, {"pid": 0})
    kit.orders.hold_waits = False  # the next order's wait passes at once: it ends at the maker timeout
    await asyncio.wait_for(maker.cycle(), WAIT_S)
    assert kit.events.matching("a", "heartbeat_back", peer="b")
    assert len(kit.orders.sent) == 2 and kit.orders.cancelled[-1][1] == "older than 60 s"


async def test_a_redis_silent_for_the_bound_cancels_the_order_one_slow_answer_does_not(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")
    clock = FakeClock()
    outbox_answered = [clock.now]  # when Redis last answered A's outbox, on the watch's clock
    rt = kit.runtime("a")
    watch = BWatch(rt, COID, clock, answered_elsewhere=lambda: outbox_answered[0])
    await kit.peer.beat("b", 60, {"pid": 0})
    answer_with = rt.bus.heartbeat

    async def slow(role: str) -> dict[str, Any] | None:
        clock.now += 0.9 * watch.silent_s  # one answer nearly as slow as the bound: late, not silent
        return await answer_with(role)

    async def hung(role: str) -> dict[str, Any] | None:
        clock.now += 0.6 * watch.silent_s  # the client's timeouts, then the error
        raise RedisTimeout("Timeout reading from socket")

    rt.bus.heartbeat = slow  # type: ignore[method-assign]
    await watch.look()
    assert watch.cancel_reason is None
    rt.bus.heartbeat = hung  # type: ignore[method-assign]
    await watch.look()
    assert watch.cancel_reason is None  # silent for 0.6 of the bound
    outbox_answered[0] = clock.now  # the outbox's round trip went through meanwhile: Redis is not silent
    await watch.look()
    assert watch.cancel_reason is None  # 1.2 bounds since the watch's own answer, 0.6 since the outbox's
    await watch.look()
    assert watch.silent and not watch.lost  # Redis silent says nothing about B
    assert watch.cancel_reason == silent_reason(watch.silent_s) == (
        f"Redis has not answered for {watch.silent_s:g} s: a fill could not reach B")
    (silent,) = kit.events.matching("a", "redis_silent")
    assert (silent.coid, silent.reason) == (COID, watch.cancel_reason)
    assert not kit.events.matching("a", "heartbeat_absent")
    await asyncio.wait_for(watch.wait(), WAIT_S)  # what the resting loop waits on


async def test_a_resting_order_is_cancelled_while_redis_answers_nothing_and_nothing_new_is_placed(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")  # the outbox's task is not started: only the watch's reads talk to Redis
    await kit.peer.beat("b", 60, {"pid": 0})
    kit.orders.hold_waits = True  # the order rests until something happens to it
    maker = kit.maker()
    redis_runs = asyncio.Event()
    answer_with = kit.bus.heartbeat

    async def frozen(role: str) -> dict[str, Any] | None:  # a hung Redis: the read waits until it runs again
        await redis_runs.wait()
        return await answer_with(role)

    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    kit.bus.heartbeat = frozen  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(cycle, WAIT_S)  # cancelled once Redis has been silent for the bound
        (silent,) = kit.events.matching("a", "redis_silent")
        assert kit.orders.cancelled == [(placed.coid, silent.reason)]
        assert silent.reason is not None and silent.reason.startswith("Redis has not answered for")
        assert not kit.events.matching("a", "heartbeat_absent")  # B is not said to be lost

        # The next cycle's first step reads Redis (the pause): it raises while Redis answers nothing, before
        # anything is placed (`Maker.run` logs it and tries again).
        async def no_answer(*_: object) -> None:
            raise RedisTimeout("Timeout reading from socket")

        kit.bus.probe = no_answer  # type: ignore[method-assign, assignment]
        with pytest.raises(RedisError):
            await maker.cycle()
        assert len(kit.orders.sent) == 1
    finally:
        redis_runs.set()  # the reads left behind end
