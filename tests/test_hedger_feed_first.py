"""Feed first (`strategy.hedge_from_trade_feed_first`): while Redis answers, B hedges A's fill the moment the
exchange's trade feed shows it, under the request id A sends, and A's request, whenever it comes, is answered
from that hedge, never hedged twice. Against the fake executor and fakeredis (`fixtures/fake_orders.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.exceptions import RedisError

from hedge_strategy import hedger as hedger_module
from hedge_strategy import wash_guard
from hedge_strategy.bus import FAILED, FILLED, HedgeRequest, PauseState, now_ms
from hedge_strategy.bus.resting import RestingOrder, publish_resting
from hedge_strategy.exchange import PublicTrade, Refusal, RefusalKind, SendResult, SendStatus
from hedge_strategy.execution import OrderSpec
from hedge_strategy.hedger import Hedger, hedge_coid
from hedge_strategy.hedger_feed import FeedFills, RedisSilence, TradeFeedWatch, feed_request
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import A_ACCOUNT, BTC, UnitFactory, UnitKit
from tests.test_first_publish import b_handles, marked, spy_outcome_checks
from tests.test_hedger_feed import A_COID, SIZE, a_fill, redis_fails

WAIT_S = 10.0  # bounds each wait on an event; the work itself takes milliseconds


def first_kit(kit: UnitKit, clock: FakeClock | None = None, held: Callable[[], bool] = lambda: False,
              hold_known: Callable[[], bool] = lambda: True) -> tuple[Hedger, TradeFeedWatch]:
    """B with the trade feed's watch, feed first on; Redis answers until the test says otherwise."""
    clock = clock or FakeClock()
    hedger = kit.hedger()
    hedger.silence = RedisSilence(clock)
    hedger.feed = FeedFills(A_ACCOUNT, 2.0, clock=clock)
    watch = TradeFeedWatch(kit.orders.account, BTC, kit.config.pair, hedger.feed, hedger.silence,  # type: ignore[arg-type]
                           hedger.hedge_from_feed, lambda: None, asyncio.Event(), held=held, first=True,
                           hold_known=hold_known)
    return hedger, watch


async def seen(watch: TradeFeedWatch, trade: PublicTrade) -> int:
    """The feed's event for `trade`, as `TradeFeedWatch.run` takes it: remembered, then what is due hedged."""
    watch.fills.saw(trade)
    return await watch.hedge_due()


def request_of(kit: UnitKit, trade: PublicTrade) -> HedgeRequest:
    return feed_request(trade, kit.config.pair, BTC)


def sent_for(kit: UnitKit, request_id: str) -> list[OrderSpec]:
    return [spec for spec in kit.orders.sent if spec.request_id == request_id]


async def test_a_fill_is_hedged_at_its_trade_event_under_as_request_id(
        unit_factory: UnitFactory, log_lines: list[str]) -> None:
    """`run` reacts to the event itself (no wait, no poll); nothing is logged before the send, one line
    after; the wash guard is B's key (Redis answers), not the exchange's listing."""
    kit = await unit_factory("b", max_slippage_bps=50)
    _, watch = first_kit(kit)
    kit.orders.account.move_ticks = 30
    kit.orders.ioc_fills = [SIZE]
    touch = kit.orders.account.bids[0]
    # A's bid of one lot, which this trade fills: it rests nowhere, so B's key bounds nothing.
    await publish_resting(kit.peer, RestingOrder(A_COID, "buy", touch - 10 * BTC.tick, SIZE))
    lines_at_send: list[int] = []
    real_submit = kit.orders.submit

    async def submit(spec: OrderSpec):  # type: ignore[no-untyped-def]
        lines_at_send.append(len(log_lines))
        return await real_submit(spec)
    kit.orders.submit = submit  # type: ignore[method-assign]
    stop = asyncio.Event()
    watch._stop = stop
    running = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0)  # subscribed
        trade = a_fill(41)
        for queue in kit.orders.account._subscribers:
            queue.put_nowait(trade)
        await kit.orders.changes.until(lambda: kit.orders.sent, WAIT_S)
    finally:
        stop.set()
        await running
    request = request_of(kit, trade)
    (sent,) = kit.orders.sent
    assert sent.coid == hedge_coid(request.request_id, 1) and sent.request_id == request.request_id
    assert sent.price < touch - 10 * BTC.tick  # B's key was read: A's order, filled, bounds nothing
    assert kit.orders.account.listing_reads == []  # no FeedWashBound: Redis answers
    stored = await kit.peer.get_outcomes([request.request_id])
    assert (stored[request.request_id].status, stored[request.request_id].filled_size) == (FILLED, SIZE)
    # nothing of this fill logged before the send (its trade or its request id; a bare "41" also matched the
    # pytest temp directory's number in the journal's line, so the test failed when that number held 41)
    assert not [line for line in log_lines[:lines_at_send[0]]
                if "trade 41" in line or request.request_id in line]
    (told,) = [line for line in log_lines if "from the trade feed, ahead of A's request" in line]
    assert told.startswith("INFO") and request.request_id in told


@pytest.mark.parametrize("when", ["before its order is journaled", "after its order is journaled",
                                  "after its outcome"])
@pytest.mark.parametrize("mark", [True, False], ids=["marked", "unmarked"])
@pytest.mark.parametrize("alone", [True, False], ids=["alone", "in a batch"])
async def test_as_request_during_or_after_the_feed_hedge_is_answered_from_it(
        unit_factory: UnitFactory, when: str, mark: bool, alone: bool) -> None:
    kit = await unit_factory("b")
    hedger, _ = first_kit(kit)
    kit.orders.ioc_fills = [SIZE, SIZE]
    trade = a_fill(51)
    request = request_of(kit, trade)
    other = request_of(kit, a_fill(52))  # another fill of A's, whose request comes in the same batch
    in_flight, go_on = asyncio.Event(), asyncio.Event()
    real_submit, real_finish = kit.orders.submit, kit.orders.finish

    async def submit(spec: OrderSpec):  # type: ignore[no-untyped-def]
        if spec.request_id == request.request_id and when == "before its order is journaled":
            in_flight.set()
            await go_on.wait()
        return await real_submit(spec)

    async def finish(coid: int, attempt: int | None = None):  # type: ignore[no-untyped-def]
        if coid == hedge_coid(request.request_id, 1) and when == "after its order is journaled":
            in_flight.set()
            await go_on.wait()
        return await real_finish(coid, attempt)
    kit.orders.submit, kit.orders.finish = submit, finish  # type: ignore[method-assign]
    requested = asyncio.Event()
    real_requested = hedger.feed.requested  # type: ignore[union-attr]

    def note_requested(req: HedgeRequest) -> None:
        real_requested(req)
        requested.set()
    hedger.feed.requested = note_requested  # type: ignore[method-assign,union-attr]

    feed_hedge = asyncio.create_task(hedger.hedge_from_feed(request, None))
    if when == "after its outcome":
        assert await feed_hedge
    else:
        await asyncio.wait_for(in_flight.wait(), WAIT_S)
    batch = [marked(r) if mark else r for r in ([request] if alone else [request, other])]
    handling = asyncio.create_task(b_handles(kit, hedger, *batch))
    await asyncio.wait_for(requested.wait(), WAIT_S)  # B read A's request: it waits for the hedge lock
    go_on.set()
    await asyncio.wait_for(handling, WAIT_S)
    assert await asyncio.wait_for(feed_hedge, WAIT_S)

    assert [s.coid for s in sent_for(kit, request.request_id)] == [hedge_coid(request.request_id, 1)]
    assert kit.events.matching("b", "hedge_from_feed", lambda e: e.request_ids == (request.request_id,))
    assert kit.events.matching("b", "request_already_answered",
                               lambda e: e.request_ids == (request.request_id,))
    stored = await kit.peer.get_outcomes([request.request_id, other.request_id])
    assert stored[request.request_id].status == FILLED
    assert stored[request.request_id].request_ids == (request.request_id,)  # the feed hedge's own outcome
    if not alone:
        assert len(sent_for(kit, other.request_id)) == 1 and stored[other.request_id].status == FILLED
    assert await kit.bus.pending_count() == 0  # every delivery acknowledged


async def test_the_fast_path_sees_a_feed_hedge_from_the_moment_it_is_taken(unit_factory: UnitFactory) -> None:
    """A's marked request read in the same turn of the loop as the feed takes its fill, before the feed's
    hedge ran: B treats it as known (its stored-outcome check is made), and hedges it once."""
    kit = await unit_factory("b")
    hedger, _ = first_kit(kit)
    kit.orders.ioc_fills = [SIZE]
    request = request_of(kit, a_fill(61))
    await kit.bus.ensure_group()
    await kit.peer.publish_request(marked(request))
    deliveries = await kit.bus.read_requests(hedger.consumer, count=10, block_ms=None)
    asked = spy_outcome_checks(kit.bus)

    feed_hedge = asyncio.ensure_future(hedger.hedge_from_feed(request, None))
    await asyncio.sleep(0)  # the feed took the fill; its hedge has not run yet (no lock taken, nothing sent)
    assert hedger.busy and kit.orders.sent == []
    await hedger.handle(deliveries)  # the free lock goes to the batch
    assert await asyncio.wait_for(feed_hedge, WAIT_S)

    assert asked == [[request.request_id]]  # not on the fast path: checked, as any request B may know
    assert len(kit.orders.sent) == 1 and kit.orders.sent[0].request_id == request.request_id
    assert not kit.events.matching("b", "hedge_from_feed")  # the request was first: the feed left it
    assert await kit.bus.pending_count() == 0


async def test_a_feed_frame_after_as_request_or_its_outcome_is_not_hedged_again(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit)
    kit.orders.ioc_fills = [SIZE, SIZE]
    first_trade, second_trade = a_fill(71), a_fill(72)
    await b_handles(kit, hedger, marked(request_of(kit, first_trade)))  # A's request came first and is done
    assert await seen(watch, first_trade) == 0
    # A's request read, its hedge in hand: the frame that comes meanwhile is left to it.
    handling = asyncio.create_task(b_handles(kit, hedger, request_of(kit, second_trade)))
    await kit.orders.changes.until(lambda: len(kit.orders.sent) == 2, WAIT_S)
    assert await seen(watch, second_trade) == 0
    await asyncio.wait_for(handling, WAIT_S)
    assert [s.request_id for s in kit.orders.sent] == [request_of(kit, t).request_id
                                                        for t in (first_trade, second_trade)]
    assert not kit.events.matching("b", "hedge_from_feed")


async def test_partial_fills_are_hedged_once_per_trade_whichever_channel_comes_first(
        unit_factory: UnitFactory) -> None:
    """Three trades of one order of A's: the feed is first for the first and the third, A's request for the
    second; every request of A's then comes (again, for the second)."""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit)
    kit.orders.ioc_fills = [SIZE] * 3
    trades = [a_fill(trade_id) for trade_id in (81, 82, 83)]
    requests = [request_of(kit, trade) for trade in trades]
    assert len({r.request_id for r in requests}) == 3  # one order, one request id per trade
    assert await seen(watch, trades[0]) == 1
    await b_handles(kit, hedger, marked(requests[1]))
    assert await seen(watch, trades[1]) == 0
    assert await seen(watch, trades[2]) == 1
    await b_handles(kit, hedger, *(marked(r) for r in requests))

    assert [s.request_id for s in kit.orders.sent] == [r.request_id for r in requests]
    assert [s.coid for s in kit.orders.sent] == [hedge_coid(r.request_id, 1) for r in requests]
    stored = await kit.peer.get_outcomes([r.request_id for r in requests])
    assert all(stored[r.request_id].status == FILLED for r in requests)
    assert await kit.bus.pending_count() == 0


async def test_a_trade_without_the_makers_client_id_is_left_to_as_request(
        unit_factory: UnitFactory, log_lines: list[str]) -> None:
    """A venue whose trade frames carry no client ids: nothing changes, nothing is logged per fill."""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(91, coid=None)
    assert await seen(watch, trade) == 0 and kit.orders.sent == []
    assert not [line for line in log_lines if "91" in line]
    await b_handles(kit, hedger, marked(request_of(kit, a_fill(91))))  # A's request, as it names the order
    assert len(kit.orders.sent) == 1 and len(watch.fills) == 0


async def test_nothing_is_hedged_first_while_b_is_held_or_before_it_read_its_hold(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    hold = {"known": False, "held": False}
    _, watch = first_kit(kit, held=lambda: hold["held"], hold_known=lambda: hold["known"])
    kit.orders.ioc_fills = [SIZE, SIZE]
    assert await seen(watch, a_fill(101)) == 0  # B has not read its hold state yet: kept, not hedged
    assert 101 in watch.fills
    hold.update(known=True, held=True)
    assert await seen(watch, a_fill(102)) == 0
    assert len(watch.fills) == 0  # both left to the holder, for good
    hold["held"] = False
    assert await seen(watch, a_fill(101)) == 0 and await seen(watch, a_fill(102)) == 0
    assert kit.orders.sent == []
    assert await seen(watch, a_fill(103)) == 1 and len(kit.orders.sent) == 1  # released: a new fill is


async def test_a_feed_hedge_queued_behind_a_batch_sends_nothing_once_b_is_held(
        unit_factory: UnitFactory) -> None:
    """It counts as in hand while it waits (B's heartbeat says busy: clear waits for it)."""
    kit = await unit_factory("b")
    hedger, _ = first_kit(kit)
    kit.orders.ioc_fills = [SIZE]
    request = request_of(kit, a_fill(111))
    async with hedger._one_hedge:  # a batch in hand
        queued = asyncio.create_task(hedger.hedge_from_feed(request, None))
        await asyncio.sleep(0)
        assert hedger.busy
        hedger.gate.hold = PauseState(since_ms=now_ms(), by="hedgectl", reason="clear")
    assert await asyncio.wait_for(queued, WAIT_S)  # settled: the holder's
    assert kit.orders.sent == [] and not hedger.busy


@pytest.mark.parametrize("redis", ["fails", "hangs"])
async def test_a_fill_whose_first_hedge_sent_nothing_is_hedged_once_redis_is_silent(
        unit_factory: UnitFactory, monkeypatch: pytest.MonkeyPatch, redis: str) -> None:
    """Redis stops answering as the fill comes: B's key is not read (an error, or no answer within
    `FIRST_KEY_READ_S`), nothing is sent; once Redis has been silent long enough, the feed's wait hedges it
    with the exchange's listing as the wash bound. Once."""
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = first_kit(kit, clock)
    kit.orders.ioc_fills = [SIZE]

    async def unanswered(bus: object) -> RestingOrder | None:
        if redis == "hangs":
            await asyncio.Event().wait()
        raise RedisError("Timeout reading from socket")
    monkeypatch.setattr(wash_guard, "read_resting", unanswered)
    monkeypatch.setattr(hedger_module, "FIRST_KEY_READ_S", 0.01)
    trade = a_fill(121)
    assert await seen(watch, trade) == 1
    assert kit.orders.sent == [] and 121 in watch.fills  # remembered again, for the wait
    assert await watch.hedge_due() == 0  # not taken first a second time
    redis_fails(hedger.silence)
    clock.now += 2.5
    assert await watch.hedge_due() == 1
    (sent,) = kit.orders.sent
    assert sent.request_id == request_of(kit, trade).request_id and kit.orders.account.listing_reads
    assert await watch.hedge_due() == 0


async def test_redis_going_silent_while_the_first_hedge_waits_leaves_it_to_the_wait(
        unit_factory: UnitFactory) -> None:
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, _ = first_kit(kit, clock)
    request = request_of(kit, a_fill(131))
    async with hedger._one_hedge:  # a batch in hand, whose outcome's publish hangs
        queued = asyncio.create_task(hedger.hedge_from_feed(request, None))
        await asyncio.sleep(0)
        redis_fails(hedger.silence)
        clock.now += 2
    assert await asyncio.wait_for(queued, WAIT_S) is False
    assert kit.orders.sent == []


def test_only_trades_made_since_b_began_following_the_feed_are_hedged_first() -> None:
    """A restarted B's memory does not know what A's withdrawal or `hedgectl clear` settled before it."""
    wall = [now_ms()]
    fills = FeedFills(A_ACCOUNT, 2.0, clock=FakeClock(), wall_ms=lambda: wall[0])
    fills.saw(a_fill(141, ts_ms=wall[0] - 1))  # made just before this memory began (a snapshot)
    fills.saw(a_fill(142, ts_ms=wall[0]))
    assert [seen.trade.trade_id for seen in fills.first_due()] == [142]


async def test_b_follows_the_option(unit_factory: UnitFactory) -> None:
    on = (await unit_factory("b")).hedger().feed_watch()
    assert on is not None and on.first
    off = (await unit_factory("b", hedge_from_trade_feed_first=False)).hedger().feed_watch()
    assert off is not None and not off.first  # the feed serves only while Redis is silent
    none = await unit_factory("b", hedge_from_trade_feed_first=False, hedge_from_trade_feed_after_s=None)
    assert none.hedger().feed_watch() is None


async def test_a_first_hedge_refused_fails_as_as_request_would_and_the_request_is_answered_from_it(
        unit_factory: UnitFactory, log_lines: list[str]) -> None:
    """Feed first, the outcome is published whatever it is, as on the request path: a refusal retrying cannot
    fix ends the chase (A pauses on it); A's request is answered from that outcome, not resumed for more
    attempts. (While Redis is silent a failed feed hedge publishes nothing: `test_hedger_feed.py`.)"""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit)
    kit.orders.answers = [SendResult(SendStatus.REJECTED, 21130, "not enough margin", None,
                                     Refusal(RefusalKind.FINAL, "not enough margin"))]
    trade = a_fill(151)
    request = request_of(kit, trade)
    assert await seen(watch, trade) == 1
    assert len(kit.orders.sent) == 1
    stored = await kit.peer.get_outcomes([request.request_id])
    assert stored[request.request_id].status == FAILED
    (told,) = [line for line in log_lines if "B hedge FAILED for" in line]
    assert told.startswith("ERROR") and "from the trade feed, ahead of A's request" in told
    await b_handles(kit, hedger, marked(request))
    assert len(kit.orders.sent) == 1  # no second hedge
    assert kit.events.matching("b", "request_already_answered",
                               lambda e: e.request_ids == (request.request_id,))
    assert await kit.bus.pending_count() == 0


async def test_a_fill_whose_request_arrives_while_the_feed_hedges_another_is_left_to_it(
        unit_factory: UnitFactory) -> None:
    """Two fills seen together; A's request for the second is read while the feed hedges the first: the feed
    leaves the second to it (nothing handed over, nothing sent twice)."""
    kit = await unit_factory("b")
    _, watch = first_kit(kit)
    kit.orders.ioc_fills = [SIZE, SIZE]
    first_trade, second_trade = a_fill(161), a_fill(162)
    watch.fills.saw(first_trade)
    watch.fills.saw(second_trade)
    real_submit = kit.orders.submit

    async def submit(spec: OrderSpec):  # type: ignore[no-untyped-def]
        if spec.request_id == request_of(kit, first_trade).request_id:
            watch.fills.requested(request_of(kit, second_trade))  # as `Hedger.handle` does at once
        return await real_submit(spec)
    kit.orders.submit = submit  # type: ignore[method-assign]
    assert await watch.hedge_due() == 1
    assert [s.request_id for s in kit.orders.sent] == [request_of(kit, first_trade).request_id]
    assert not kit.events.matching("b", "hedge_from_feed",
                                   lambda e: e.request_ids == (request_of(kit, second_trade).request_id,))


@pytest.mark.parametrize("resting_size", [2 * SIZE, None], ids=["partly filled", "being modified"])
async def test_a_fill_of_an_order_that_may_still_rest_is_left_to_as_request(
        unit_factory: UnitFactory, resting_size: object) -> None:
    """A, not knowing the fill yet, may re-price the order's remainder (a modify's widened entry would land
    after B's read): B leaves such a fill to A's request, which B's key then bounds."""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit)
    kit.orders.account.move_ticks = 30  # room beyond the touch, which A's bid then bounds
    kit.orders.ioc_fills = [SIZE]
    touch = kit.orders.account.bids[0]
    await publish_resting(kit.peer, RestingOrder(A_COID, "buy", touch - 10 * BTC.tick, resting_size))  # type: ignore[arg-type]
    trade = a_fill(91)
    assert await seen(watch, trade) == 1  # handed over, and nothing sent
    assert kit.orders.sent == []
    assert await seen(watch, trade) == 0  # not taken first twice
    await b_handles(kit, hedger, request_of(kit, trade))
    (sent,) = kit.orders.sent
    assert sent.price == touch - 9 * BTC.tick  # A's request: B's key bounds the sell


async def test_a_fill_made_before_bs_release_from_a_hold_is_never_hedged_from_the_feed(
        unit_factory: UnitFactory) -> None:
    """B's book link was down when A's order filled; `hedgectl clear` held B (nothing remembered to drop),
    settled the fill and released B; the reconnect's snapshot of `trade/{m}` then brings the fill: the holder
    settled it, so the feed leaves it (found by a review: it was hedged, reopening what clear had closed)."""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit, held=lambda: hedger.gate.held)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(201)
    hedger.gate._held(PauseState(reason="clear", by="hedgectl", since_ms=now_ms()))
    assert await watch.hedge_due() == 0
    hedger.gate._released()
    assert await seen(watch, trade) == 0
    assert kit.orders.sent == []


async def test_a_feed_hedge_that_finds_b_held_leaves_its_fill_to_the_holder_for_good(
        unit_factory: UnitFactory) -> None:
    """Taken first, then B held under the lock: nothing sent, and a later frame of the same trade (after the
    release) is not taken again (found by a review)."""
    kit = await unit_factory("b")
    hedger, watch = first_kit(kit, held=lambda: hedger.gate.held)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(211)
    hedger.gate.hold = PauseState(reason="clear", by="hedgectl", since_ms=now_ms())  # learned while queued
    assert await hedger.hedge_from_feed(request_of(kit, trade), None) is True
    hedger.gate.hold = None
    assert await seen(watch, trade) == 0
    assert kit.orders.sent == []
