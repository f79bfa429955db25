"""After a failed Redis command, A's outbox and B's reader go on the moment Redis answers again
(`bus.revival`), never after a fixed sleep, and never ask a failing Redis in a loop; B first takes the
requests a read whose reply was lost delivered to it.

A hung Redis is a PING the test answers when it likes; the waits `revival` asks for are recorded (and not
slept) with a clock that stands still, so what is asserted is how long each wait was asked to be.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from hedge_strategy.bus import HedgeRequest, now_ms, revival
from hedge_strategy.bus.revival import FLOOR_MIN_S, PING_EVERY_S, UntilAnswering
from hedge_strategy.exchange import Purpose, Role, make_coid
from hedge_strategy.maker_bus import RETRY_MAX_S
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import BTC, UnitFactory, a_with_b_up
from tests.test_maker_unit import maker_fill

WAIT_S = 5.0


class FakePings:
    """A Redis client's `ping`: each call takes the next answer (an exception to raise, or None to answer at
    once), then, when none is left, waits until the test says Redis runs (`runs`)."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers)
        self.runs = asyncio.Event()
        self.sent = asyncio.Event()  # set at each PING
        self.count = 0

    async def ping(self) -> bool:
        self.count += 1
        self.sent.set()
        if self.answers:
            answer = self.answers.pop(0)
            if answer is not None:
                raise answer
            return True
        await self.runs.wait()
        return True


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait `revival` asks for, in seconds, returned at once instead of slept."""
    asked: list[float] = []

    async def recorded(seconds: float, stop: asyncio.Event | None) -> bool:
        asked.append(seconds)
        await asyncio.sleep(0)
        return stop is None or not stop.is_set()

    monkeypatch.setattr(revival, "_sleep", recorded)
    return asked


async def test_a_hung_redis_is_tried_again_the_moment_it_answers_a_ping(waits: list[float]) -> None:
    pings = FakePings()
    clock = FakeClock(0.0)
    until = UntilAnswering(pings, 2.0, clock)  # type: ignore[arg-type]
    waiting = asyncio.create_task(until.wait())
    await asyncio.wait_for(pings.sent.wait(), WAIT_S)
    clock.now += 9.0  # Redis hangs on: the PING waits, nothing else is sent
    assert not waiting.done() and pings.count == 1
    pings.runs.set()  # Redis runs again and answers the PING it kept
    assert await asyncio.wait_for(waiting, WAIT_S)
    assert pings.count == 1 and waits == [0.0]  # no wait after the answer: the floor passed long ago


async def test_a_refusing_redis_is_pinged_at_a_bounded_pace(waits: list[float]) -> None:
    refused = RedisConnectionError("Connection refused")
    pings = FakePings(refused, refused, refused, None)
    until = UntilAnswering(pings, 2.0, FakeClock(0.0))  # type: ignore[arg-type]
    assert await asyncio.wait_for(until.wait(), WAIT_S)
    assert pings.count == 4
    assert waits == [PING_EVERY_S] * 3 + [FLOOR_MIN_S]  # one PING per PING_EVERY_S, then the floor


async def test_a_redis_that_answers_ping_but_fails_the_command_is_asked_ever_less_often(
        waits: list[float]) -> None:
    until = UntilAnswering(FakePings(*[None] * 8), 0.5, FakeClock(0.0))  # type: ignore[arg-type]
    for _ in range(5):  # each attempt failed again: the floor doubles, up to the cap
        assert await until.wait()
    assert waits == [FLOOR_MIN_S, 2 * FLOOR_MIN_S, 4 * FLOOR_MIN_S, 8 * FLOOR_MIN_S, 0.5]
    until.answered()  # an attempt went through: the next failure starts from the least floor again
    assert await until.wait()
    assert waits[-1] == FLOOR_MIN_S


async def test_the_outbox_publishes_the_moment_a_hung_redis_answers_again(
        unit_factory: UnitFactory, waits: list[float]) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    pings = FakePings()
    kit.bus.redis.ping = pings.ping  # type: ignore[method-assign]
    publish = kit.bus.publish_request
    tries: list[str] = []

    async def first_times_out(request: HedgeRequest) -> str:
        tries.append(request.request_id)
        if len(tries) == 1:  # the client's timeouts and retries ran out on a hung Redis
            raise RedisTimeout("Timeout reading from socket")
        return await publish(request)

    kit.bus.publish_request = first_times_out  # type: ignore[method-assign]
    maker.hedges.outbox.start()
    await maker.on_fill(maker_fill(701), None)
    await kit.events.wait("a", "redis_unavailable", timeout_s=WAIT_S)
    await asyncio.wait_for(pings.sent.wait(), WAIT_S)  # the outbox waits on a PING, not on a timer
    assert len(tries) == 1 and not kit.events.matching("a", "hedge_request_published")

    pings.runs.set()
    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    await kit.events.wait("a", "redis_back", timeout_s=WAIT_S)
    assert len(tries) == 2 and published.request_ids == (tries[0],)  # the same request, sent again
    assert max(waits) <= FLOOR_MIN_S < RETRY_MAX_S  # never the old back-off


async def test_b_hedges_a_request_a_lost_read_took_as_soon_as_redis_answers(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [Decimal("0.0002")]
    hedger = kit.hedger()
    await kit.bus.ensure_group()
    request = HedgeRequest.for_fills(
        pair=kit.config.pair, market="BTC", market_id=BTC.market_id, a_fill_side="buy",
        size=Decimal("0.0002"), a_client_order_index=make_coid(Role.A, Purpose.MAKER, 1), trade_ids=[41],
        a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())
    await kit.peer.publish_request(request)
    # A read of B's ran in a Redis that had hung (it ran the read it kept when it ran again), and its reply
    # was lost (B's client had timed out): the request is pending for B's consumer, and no read of new
    # requests returns it again.
    await kit.peer.read_requests(hedger.consumer, count=10, block_ms=None)
    read = kit.bus.read_requests
    reads: list[bool] = []

    async def first_lost(*args: Any, **kwargs: Any) -> Any:
        reads.append(kwargs.get("own_pending", False))
        if len(reads) == 1:
            raise RedisTimeout("Timeout reading from socket")
        return await read(*args, **kwargs)

    kit.bus.read_requests = first_lost  # type: ignore[method-assign]
    loop = asyncio.create_task(hedger._read_loop())
    try:
        (done,) = await kit.events.wait("b", "hedge_done", timeout_s=WAIT_S)  # not after a 30 s claim
        assert done.request_ids == (request.request_id,) and done.state == "filled"
        assert reads[:2] == [False, True]  # the read after the failure is of B's own pending requests
        assert await kit.bus.pending_count() == 0
    finally:
        hedger.rt.stop.set()
        await asyncio.wait_for(loop, WAIT_S)
