"""B hedges A's fills from the public trade feed while Redis is silent (`hedger_feed`): the memory of fills,
the trigger, the request it builds, the wash bound, and that A's own request is never hedged a second time.
Against the fake executor and fakeredis (`fixtures/fake_orders.py`), on an injected clock."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from decimal import Decimal

import pytest
from redis.exceptions import RedisError, ResponseError

from hedge_strategy.bus import FILLED, HedgeRequest, PauseState, now_ms, request_id_for
from hedge_strategy.bus.resting import RestingOrder
from hedge_strategy.exchange import PublicTrade, Purpose, Role, Side, make_coid, parsing
from hedge_strategy.execution import OrderKind
from hedge_strategy.hedger import Hedger, hedge_coid
from hedge_strategy.hedger_feed import (
    FEED_MEMORY_S,
    REDIS_SILENT_S,
    FeedFills,
    FeedWashBound,
    RedisSilence,
    TradeFeedWatch,
    feed_request,
)
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import A_ACCOUNT, B_ACCOUNT, BTC, FakeVenue, UnitFactory, UnitKit
from tests.fixtures.wire import CORPUS_DIR, read_file
from tests.test_first_publish import b_handles, marked

SIZE = Decimal("0.0002")
A_PRICE = Decimal("95000.0")  # A's bid, filled; the fake book's best bid is 94999.0 below it
A_COID = make_coid(Role.A, Purpose.MAKER, 7)
TAKER = 555


def a_fill(trade_id: int, coid: int | None = A_COID, account: int = A_ACCOUNT, ts_ms: int | None = None,
           size: Decimal = SIZE) -> PublicTrade:
    """A's bid filled by someone's sell: A is the maker on the bid side."""
    return PublicTrade(market_id=BTC.market_id, trade_id=trade_id, size=size, price=A_PRICE,
                       ask_account_id=TAKER, bid_account_id=account, ask_client_id=99, bid_client_id=coid,
                       is_maker_ask=False, ts_ms=now_ms() if ts_ms is None else ts_ms)


def redis_fails(silence: RedisSilence) -> None:
    """One of B's Redis calls gets no answer (a timeout): the silence runs from its start."""
    with contextlib.suppress(RedisError), silence.asking():
        raise RedisError("Timeout reading from socket")


def feed_kit(kit: UnitKit, clock: FakeClock) -> tuple[Hedger, TradeFeedWatch]:
    hedger = kit.hedger()
    hedger.silence = RedisSilence(clock)
    hedger.feed = FeedFills(A_ACCOUNT, 2.0, clock=clock)
    watch = TradeFeedWatch(kit.orders.account, BTC, kit.config.pair, hedger.feed, hedger.silence,  # type: ignore[arg-type]
                           hedger.hedge_from_feed, lambda: None, asyncio.Event())
    return hedger, watch


# --- what B remembers ---------------------------------------------------------------------------------------


def test_only_a_fresh_maker_fill_of_as_is_remembered_and_a_request_forgets_it() -> None:
    clock = FakeClock()
    fills = FeedFills(A_ACCOUNT, 2.0, clock=clock)
    assert fills.saw(a_fill(1))
    assert not fills.saw(a_fill(2, account=B_ACCOUNT))  # another account's maker fill
    assert not fills.saw(replace(a_fill(3), is_maker_ask=True))  # A was the taker (the ask is the maker)
    assert not fills.saw(a_fill(4, coid=make_coid(Role.OPERATOR, Purpose.CLOSE, 1)))  # not A's maker order
    assert not fills.saw(a_fill(5, ts_ms=now_ms() - int(FEED_MEMORY_S * 1000) - 1000))  # old: a snapshot
    assert fills.saw(a_fill(6, coid=None))  # no client id (Oct 2025 frames): remembered, to be logged
    assert (1 in fills, 6 in fills, len(fills)) == (True, True, 2)

    fills.requested(feed_request(a_fill(1), "p", BTC))
    assert 1 not in fills
    assert not fills.saw(a_fill(1))  # the feed's frame after the request: the request has it


def test_a_fill_is_due_after_the_delay_and_forgotten_past_the_memory() -> None:
    clock, wall = FakeClock(), [now_ms()]
    fills = FeedFills(A_ACCOUNT, 2.0, clock=clock, memory_s=30, wall_ms=lambda: wall[0])
    fills.saw(a_fill(1, ts_ms=wall[0]))
    clock.now += 1.9
    assert fills.due() == []
    clock.now += 0.1
    assert [seen.trade.trade_id for seen in fills.due()] == [1]
    clock.now, wall[0] = clock.now + 30, wall[0] + 30_001
    assert fills.due() == [] and len(fills) == 0


def test_the_memory_counts_from_the_trade_not_from_when_the_feed_brought_it() -> None:
    """A fill the feed brings late (a reconnect's snapshot, a restarted B) is hedged from the feed only while
    A still waits for its request's outcome: half of A's confirmation timeout after the trade, at most."""
    clock, wall = FakeClock(), [now_ms()]
    fills = FeedFills(A_ACCOUNT, 2.0, clock=clock, memory_s=30, wall_ms=lambda: wall[0])
    assert fills.saw(a_fill(1, ts_ms=wall[0] - 29_000))  # made 29 s ago, seen only now
    clock.now, wall[0] = clock.now + 2, wall[0] + 2_000  # due by B's wait, but now 31 s old
    assert fills.due() == [] and len(fills) == 0


def test_a_hold_drops_every_fill_remembered_for_good() -> None:
    fills = FeedFills(A_ACCOUNT, 2.0, clock=FakeClock())
    fills.saw(a_fill(1))
    fills.saw(a_fill(2))
    assert fills.drop_all() == 2 and len(fills) == 0
    assert not fills.saw(a_fill(1))  # the feed's frame again (a snapshot): the holder settled it


def test_redis_is_silent_only_while_a_call_goes_unanswered() -> None:
    clock = FakeClock()
    silence = RedisSilence(clock)
    assert silence.silent_s() == 0.0
    with silence.asking():  # B's blocked read, answered after a second: Redis is idle, not silent
        clock.now += 1.0
        assert silence.silent_s() == 1.0
    assert silence.silent_s() == 0.0
    clock.now += 30  # B busy with a hedge: no call out, nothing to be silent about
    assert silence.silent_s() == 0.0
    redis_fails(silence)
    clock.now += 1.0
    redis_fails(silence)  # the retry fails too: the silence runs from the first unanswered call
    clock.now += 2.0
    assert silence.silent_s() == 3.0
    with contextlib.suppress(ResponseError), silence.asking():
        raise ResponseError("NOGROUP")  # an error reply is an answer
    assert silence.silent_s() == 0.0


# --- the request and the bound ------------------------------------------------------------------------------


def test_the_request_from_a_captured_trade_is_the_one_a_would_send() -> None:
    frame = read_file(CORPUS_DIR / "ws" / "trade" / "ccxt_mainnet-2025-11-20.jsonl")[0].payload
    (trade,) = parsing.public_trades(frame)  # the bid was the maker: it bought 0.0346 @ 3028.85
    market = replace(BTC, market_id=trade.market_id, symbol="ETH")
    request = feed_request(trade, "pair", market)
    # `maker.Maker.on_fill` for the same fill, as A's account stream would give it:
    from_a = HedgeRequest.for_fills(
        pair="pair", market="ETH", market_id=0, a_fill_side="buy", size=Decimal("0.0346"),
        a_client_order_index=27601, trade_ids=[526801155], a_fill_price=Decimal("3028.85"),
        fill_ts_ms=1763623734215)
    assert request == from_a
    assert request.request_id == request_id_for(27601, [526801155]) == "27601-526801155"
    assert (request.side, request.first_publish) == ("sell", False)
    with pytest.raises(ValueError, match="client order index"):
        feed_request(replace(trade, bid_client_id=None), "pair", market)


def unlisted(known: RestingOrder | None = None, trade: PublicTrade | None = None) -> FeedWashBound:
    """A bound whose listing cannot be read (the venue refuses the read)."""
    venue = FakeVenue(B_ACCOUNT)
    venue.listed = {Side.BUY: RuntimeError("429"), Side.SELL: RuntimeError("429")}
    return FeedWashBound(venue, BTC, trade or a_fill(1), A_ACCOUNT, known,  # type: ignore[arg-type]
                         relist_after_s=0)


async def test_without_the_listing_the_bound_is_short_of_the_fill_price_and_of_the_last_entry() -> None:
    tick = BTC.tick
    assert await unlisted().bound(Side.SELL, tick) == A_PRICE + tick  # B sells: above A's bid
    higher = RestingOrder(A_COID, "buy", A_PRICE + 5, SIZE)  # a modify B read, to a higher bid
    assert await unlisted(higher).bound(Side.SELL, tick) == A_PRICE + 5 + tick
    lower = RestingOrder(A_COID, "buy", A_PRICE - 5, SIZE)
    assert await unlisted(lower).bound(Side.SELL, tick) == A_PRICE + tick
    ask = RestingOrder(A_COID, "sell", A_PRICE - 5, SIZE)  # an ask of A's cannot meet B's sell
    assert await unlisted(ask).bound(Side.SELL, tick) == A_PRICE + tick
    a_sold = replace(a_fill(2), is_maker_ask=True, ask_account_id=A_ACCOUNT, bid_account_id=TAKER)
    assert await unlisted(trade=a_sold).bound(Side.BUY, tick) == A_PRICE - tick  # B buys: below A's ask
    assert await unlisted().wait_unbound(Side.SELL, tick) == A_PRICE + tick  # still unread: it stays


async def test_the_exchanges_listing_bounds_by_where_as_orders_rest() -> None:
    venue = FakeVenue(B_ACCOUNT)
    tick = BTC.tick
    venue.listed[Side.BUY] = [A_PRICE + 5]  # A's remainder, moved by a modify B never read
    guard = FeedWashBound(venue, BTC, a_fill(1), A_ACCOUNT, None, relist_after_s=0)  # type: ignore[arg-type]
    assert await guard.bound(Side.SELL, tick) == A_PRICE + 5 + tick
    assert venue.listing_reads == [(A_ACCOUNT, Side.BUY)]  # A's bids: the side B's sell could meet
    assert await guard.bound(Side.SELL, tick) == A_PRICE + 5 + tick
    assert len(venue.listing_reads) == 1  # the next attempts keep it: A's orders only go away

    venue.listed[Side.BUY] = []  # A's cancel landed
    assert await guard.wait_unbound(Side.SELL, tick) is None  # read again: nothing of A's rests
    assert await guard.bound(Side.SELL, tick) is None

    venue.listed[Side.BUY] = RuntimeError("429")
    assert await guard.wait_unbound(Side.SELL, tick) is None  # an unreadable listing keeps the last one


# --- the trigger, and never twice ---------------------------------------------------------------------------


async def test_a_due_fill_is_not_hedged_while_redis_answers(unit_factory: UnitFactory) -> None:
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    hedger.feed.saw(a_fill(11))  # type: ignore[union-attr]
    clock.now += 10
    assert await watch.hedge_due() == 0  # no call unanswered: Redis is there, A's request will come
    with contextlib.suppress(RedisError), hedger.silence.asking():
        clock.now += REDIS_SILENT_S - 0.1  # a read out for less than the silence limit
        assert await watch.hedge_due() == 0
        raise RedisError("not yet")
    assert kit.orders.sent == []


async def test_nothing_is_hedged_from_the_feed_while_b_is_held(unit_factory: UnitFactory) -> None:
    """`hedgectl clear` holds B while it closes the positions (A's withdrawal holds it too, then hedges the
    residual): the feed reopens none of them, not even after the release (the review of session 6: a fill
    whose request clear superseded was hedged again once B was released)."""
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, _ = feed_kit(kit, clock)
    held = True
    watch = TradeFeedWatch(kit.orders.account, BTC, kit.config.pair, hedger.feed,  # type: ignore[arg-type]
                           hedger.silence, hedger.hedge_from_feed, lambda: None, asyncio.Event(),
                           held=lambda: held)
    hedger.feed.saw(a_fill(17))  # type: ignore[union-attr]
    redis_fails(hedger.silence)
    clock.now += 3
    assert await watch.hedge_due() == 0 and kit.orders.sent == []
    held = False
    kit.orders.ioc_fills = [SIZE]
    assert await watch.hedge_due() == 0 and kit.orders.sent == []
    assert not hedger.feed.saw(a_fill(17))  # type: ignore[union-attr]


async def test_a_feed_hedge_queued_behind_a_batch_yields_when_redis_answers_or_b_is_held(
        unit_factory: UnitFactory) -> None:
    """A hedge from the feed waits for a batch in hand (one hedge at a time). It counts as in hand while it
    waits (B's heartbeat says busy: clear and A's withdrawal wait for it), and when its turn comes after Redis
    answered again (A's request is on its way) or after a hold began, it sends nothing."""
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, _ = feed_kit(kit, clock)
    kit.orders.ioc_fills = [SIZE]
    for trade_id, then in ((21, "answers"), (22, "held")):
        redis_fails(hedger.silence)
        clock.now += 3
        trade = a_fill(trade_id)
        request = feed_request(trade, kit.config.pair, BTC)
        guard = FeedWashBound(kit.orders.account, BTC, trade, A_ACCOUNT, None)  # type: ignore[arg-type]
        async with hedger._one_hedge:  # a batch in hand
            queued = asyncio.create_task(hedger.hedge_from_feed(request, guard))
            await asyncio.sleep(0)  # let it queue on the lock
            assert hedger.busy
            if then == "answers":
                hedger.silence.answered()
            else:
                hedger.gate.hold = PauseState(since_ms=now_ms(), by="hedgectl", reason="clear")
        await queued
        hedger.gate.hold = None
        assert not hedger.busy
    assert kit.orders.sent == []


async def test_a_fill_requested_in_time_is_left_to_its_request(unit_factory: UnitFactory) -> None:
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(12)
    hedger.feed.saw(trade)  # type: ignore[union-attr]
    await b_handles(kit, hedger, marked(feed_request(trade, kit.config.pair, BTC)))  # A's request, in time
    assert len(kit.orders.sent) == 1
    redis_fails(hedger.silence)
    clock.now += 10
    assert await watch.hedge_due() == 0 and len(kit.orders.sent) == 1


async def test_a_fill_without_its_client_id_is_not_hedged_from_the_feed(unit_factory: UnitFactory) -> None:
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    hedger.feed.saw(a_fill(13, coid=None))  # type: ignore[union-attr]
    redis_fails(hedger.silence)
    clock.now += 3
    assert await watch.hedge_due() == 0
    assert kit.orders.sent == [] and len(hedger.feed) == 0  # type: ignore[arg-type]


async def test_hedged_once_from_the_feed_then_as_request_is_only_acknowledged(
        unit_factory: UnitFactory) -> None:
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(14)
    hedger.feed.saw(trade)  # type: ignore[union-attr]
    redis_fails(hedger.silence)
    clock.now += 2.5
    assert await watch.hedge_due() == 1
    assert await watch.hedge_due() == 0  # once

    request = feed_request(trade, kit.config.pair, BTC)
    (sent,) = kit.orders.sent
    assert (sent.kind, sent.side, sent.size) == (OrderKind.IOC, Side.SELL, SIZE)
    assert sent.coid == hedge_coid(request.request_id, 1) and sent.request_id == request.request_id
    assert sent.price == kit.orders.account.bids[0]  # the listing showed no order of A's: the touch
    stored = await kit.peer.get_outcomes([request.request_id])
    assert (stored[request.request_id].status, stored[request.request_id].filled_size) == (FILLED, SIZE)
    assert kit.events.matching("b", "hedge_from_feed", lambda e: e.request_ids == (request.request_id,))

    # Redis answers again and A's request comes, marked first-published: B knows it, answers from the outcome.
    await b_handles(kit, hedger, marked(request))
    assert len(kit.orders.sent) == 1
    assert kit.events.matching("b", "request_already_answered",
                               lambda e: e.request_ids == (request.request_id,))
    assert await kit.bus.pending_count() == 0


async def test_with_its_outcome_lost_as_request_is_answered_from_the_journal(
        unit_factory: UnitFactory) -> None:
    """A B restarted after hedging from the feed, the outcome never stored: the journal answers."""
    kit, clock = await unit_factory("b"), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    kit.orders.ioc_fills = [SIZE]
    trade = a_fill(15)
    hedger.feed.saw(trade)  # type: ignore[union-attr]
    redis_fails(hedger.silence)
    clock.now += 2.5
    assert await watch.hedge_due() == 1
    request = feed_request(trade, kit.config.pair, BTC)
    await kit.peer.redis.delete(kit.peer.keys.outcome(request.request_id))

    restarted = kit.hedger()  # knows nothing it answered; the journal has the hedge's order
    await b_handles(kit, restarted, marked(request))
    assert len(kit.orders.sent) == 1  # no second hedge
    assert kit.events.matching("b", "hedge_resumed", lambda e: e.request_ids == (request.request_id,))
    stored = await kit.peer.get_outcomes([request.request_id])
    assert (stored[request.request_id].status, stored[request.request_id].filled_size) == (FILLED, SIZE)


async def test_a_feed_hedge_that_does_not_fill_publishes_nothing(unit_factory: UnitFactory) -> None:
    """A failure is A's request's to report (resumed from the journal), never a guess from the feed."""
    kit, clock = await unit_factory("b", retry_times=2), FakeClock()
    hedger, watch = feed_kit(kit, clock)
    trade = a_fill(16)
    hedger.feed.saw(trade)  # type: ignore[union-attr]
    redis_fails(hedger.silence)
    clock.now += 2.5
    assert await watch.hedge_due() == 1
    request = feed_request(trade, kit.config.pair, BTC)
    assert len(kit.orders.sent) == 2  # two IOCs, nothing filled
    assert await kit.peer.get_outcomes([request.request_id]) == {}
    assert not kit.events.matching("b", "hedge_done")
