"""A's decisions, fast: a fake executor, Redis and a clock the test moves (`fixtures/fake_orders.py`).

The same behaviour runs end to end against the simulator in `test_ab_*.py`; here each rule is one cycle.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hedge_strategy.bus import FAILED, FILLED, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.bus.outcomes import OutcomeSubscription
from hedge_strategy.bus.resting import RestingOrder, clear_resting, publish_resting, read_resting
from hedge_strategy.exchange import MarketInfo, Purpose, Role, SendResult, SendStatus, Side, make_coid
from hedge_strategy.execution import JournalFill, JournalOrder, OrderKind, OrderState
from hedge_strategy.maker_cancels import RECANCEL_AFTER_S, REFUSED_RECANCEL_S, CancelPacing
from hedge_strategy.maker_hedges import FailedHedges
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import (
    A_ACCOUNT,
    ACCEPTED,
    B_ACCOUNT,
    BTC,
    UnitFactory,
    UnitKit,
    a_with_b_up,
    fill_resting,
)

WAIT_S = 5.0  # bound on every wait for something that happens at once
SIZE = Decimal("0.0002")


def maker_fill(trade_id: int, side: Side = Side.BUY, role: Role = Role.A,
               coid: int | None = None) -> JournalFill:
    purpose = Purpose.MAKER if role is Role.A else Purpose.HEDGE
    coid = make_coid(role, purpose, 7) if coid is None else coid
    return JournalFill(trade_id=trade_id, client_order_index=coid,
                       account_index=A_ACCOUNT, market_id=BTC.market_id, side=side, size=SIZE,
                       price=Decimal("94998.0"), fee=Decimal(0), is_maker=True, ts_ms=now_ms(), source="ws")


async def test_flat_a_places_a_post_only_buy_at_depth_n_cancelled_when_old(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    await kit.maker().cycle()

    (sent,) = kit.orders.sent
    assert (sent.kind, sent.side, sent.size, sent.reduce_only) == (OrderKind.POST_ONLY, Side.BUY,
                                                                  SIZE, False)
    assert sent.price == kit.orders.account.bids[1]  # depth 2: the second bid level
    (placed,) = kit.events.matching("a", "order_placed")
    assert placed.coid == sent.coid
    # It rested past maker_order_timeout_s on the test's clock (no fill came): cancelled, and the cycle ended.
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")]


async def test_a_cancel_refused_at_sendtx_is_sent_again_after_a_short_pause_not_waited_for(
        unit_factory: UnitFactory) -> None:
    """A refusal at sendTx is a definite answer (nothing cancelled, nothing on its way): A waits neither
    for the order's end (`CONFIRM_FINAL_S`) nor the pause between two taken cancels (`RECANCEL_AFTER_S`)."""
    kit = await a_with_b_up(unit_factory)
    refused = SendResult(SendStatus.REJECTED, 21104, "invalid nonce", None)
    kit.orders.answers += [ACCEPTED, refused]  # the placement's answer, then the first cancel's
    steps: list[tuple[str, float]] = []
    send_cancel, confirm_final = kit.orders.send_cancel, kit.orders.confirm_final

    async def cancel_at(market: MarketInfo, coid: int, why: str) -> SendResult:
        steps.append(("cancel", kit.clock.now))
        return await send_cancel(market, coid, why)

    async def confirm_at(coid: int, timeout_s: float | None = None) -> JournalOrder:
        steps.append(("confirm", kit.clock.now))
        return await confirm_final(coid, timeout_s)

    kit.orders.send_cancel = cancel_at  # type: ignore[method-assign]
    kit.orders.confirm_final = confirm_at  # type: ignore[method-assign]
    await asyncio.wait_for(kit.maker().cycle(), WAIT_S)

    (sent,) = kit.orders.sent
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")] * 2
    # The taken cancel is confirmed (then the cycle confirms the order's end once more); the refused one not.
    assert [kind for kind, _ in steps] == ["cancel", "cancel", "confirm", "confirm"]
    (_, refused_at), (_, again_at) = steps[:2]
    assert again_at - refused_at == REFUSED_RECANCEL_S < RECANCEL_AFTER_S
    assert kit.orders.order(sent.coid).state is OrderState.CANCELED  # type: ignore[union-attr]


def test_refusals_in_a_row_double_the_pause_up_to_the_one_after_a_taken_cancel() -> None:
    clock = FakeClock()
    pacing = CancelPacing(clock)
    refused = SendResult(SendStatus.REJECTED, 21104, "invalid nonce", None)
    assert pacing.due_in() == 0 and not pacing.any_sent
    pauses = []
    for _ in range(6):
        pacing.record(refused)
        pauses.append(pacing.due_in())
    assert pauses == [0.5, 1.0, 2.0, 4.0, RECANCEL_AFTER_S, RECANCEL_AFTER_S]
    pacing.record(ACCEPTED)
    clock.now += 1.0
    assert pacing.due_in() == RECANCEL_AFTER_S - 1.0 and pacing.sent == 7


async def test_long_a_places_a_reduce_only_sell_to_close(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    kit.orders.account.positions_by_account.update({A_ACCOUNT: SIZE, B_ACCOUNT: -SIZE})
    await kit.maker().cycle()

    (sent,) = kit.orders.sent
    assert (sent.side, sent.size, sent.reduce_only) == (Side.SELL, SIZE, True)
    assert sent.price == kit.orders.account.asks[1]


async def test_paused_a_places_nothing_until_resumed(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    await kit.peer.set_pause("operator says so", by="ctl")
    cycle = asyncio.create_task(kit.maker().cycle())
    await kit.events.wait("a", "paused", by="ctl", timeout_s=WAIT_S)
    assert kit.orders.sent == []

    await kit.peer.clear_pause()
    await asyncio.wait_for(cycle, WAIT_S)  # the cycle that found the pause ends; the next one trades
    assert kit.events.matching("a", "resumed")
    assert kit.orders.sent == []


async def test_a_places_nothing_while_a_hedge_is_outstanding(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    request = HedgeRequest.for_fills(
        pair=kit.config.pair, market="BTC", market_id=BTC.market_id, a_fill_side="buy", size=SIZE,
        a_client_order_index=make_coid(Role.A, Purpose.MAKER, 3), trade_ids=[77],
        a_fill_price=Decimal("94998"), fill_ts_ms=now_ms())
    maker.outstanding.remember(request)
    await kit.peer.publish_outcome(filled_outcome(kit, request))

    await maker.cycle()  # this cycle only settles the hedge: B's outcome answers it
    assert kit.orders.sent == []
    assert not maker.outstanding
    assert kit.events.matching("a", "hedge_outcome_received", request_ids=(request.request_id,),
                               state="filled")


async def test_without_b_heartbeat_a_places_nothing_and_says_so_once(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a")  # B never beats
    maker = kit.maker()
    await maker.cycle()
    await maker.cycle()
    assert kit.orders.sent == []
    assert len(kit.events.matching("a", "heartbeat_absent", peer="b")) == 1

    await kit.peer.beat("b", 60, {"pid": 0})
    await maker.cycle()
    assert kit.events.matching("a", "heartbeat_back", peer="b")
    assert len(kit.orders.sent) == 1


async def test_a_fill_becomes_exactly_one_hedge_request(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()  # what start-up does: the outbox's task publishes what on_fill records
    await maker.on_fill(maker_fill(501), None)
    await maker.on_fill(maker_fill(502, role=Role.B), None)  # not a maker fill of A: the A + B check sees it
    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)

    await kit.peer.ensure_group()
    (delivery,) = await kit.peer.read_requests("test", count=10, block_ms=None)
    request = delivery.request
    assert (request.side, request.size, request.trade_ids) == ("sell", SIZE, (501,))
    assert published.request_ids == (request.request_id,) and published.reason == "fill"
    assert maker.outstanding.ids == [request.request_id]


async def test_the_guard_entry_is_deleted_only_while_it_names_the_same_order(
    unit_factory: UnitFactory,
) -> None:
    kit = await a_with_b_up(unit_factory)
    ended = RestingOrder(make_coid(Role.A, Purpose.MAKER, 1), "buy", Decimal("94999.9"))
    newer = RestingOrder(make_coid(Role.A, Purpose.MAKER, 2), "buy", Decimal("94999.8"))
    await publish_resting(kit.bus, newer)
    assert not await clear_resting(kit.bus, ended)  # a late delete of the ended order: the newer one stays
    assert await read_resting(kit.bus) == newer
    assert await clear_resting(kit.bus, newer)
    assert await read_resting(kit.bus) is None
    # The same order at another price (a modify's widened or narrowed entry whose write met a lost reply: A
    # holds the other value): the entry of an order that ended is deleted whatever price it names.
    await publish_resting(kit.bus, RestingOrder(newer.client_order_index, "buy", Decimal("95000.5")))
    assert await clear_resting(kit.bus, newer)
    assert await read_resting(kit.bus) is None


async def test_a_guard_entry_left_by_a_redis_outage_is_deleted_before_the_next_request(
    unit_factory: UnitFactory,
) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    ended = RestingOrder(make_coid(Role.A, Purpose.MAKER, 1), "buy", Decimal("94999.9"))
    await publish_resting(kit.bus, ended)
    maker.hedges.outbox.clear_resting_later(ended)  # what A does when its own delete met a Redis error
    maker.hedges.outbox.start()
    await maker.on_fill(maker_fill(601), None)
    await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    # B reads the request only after the entry is gone, so its hedge is not bounded by an order that ended.
    assert await read_resting(kit.peer) is None


async def test_a_failed_hedge_cancels_the_resting_order_at_once_then_a_pauses(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("a", quantity="0.0004")
    await kit.peer.beat("b", 60, {"pid": 0})
    kit.orders.hold_waits = True  # the order rests until something happens to it; A's clock stands still
    maker = kit.maker()
    maker.hedges.outbox.start()
    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    started = kit.clock.now

    # Half of it fills: A cancels the remainder at once, and the venue refuses that cancel, so it rests on.
    kit.orders.answers.append(SendResult(SendStatus.REJECTED, 29500, "injected failure", None))
    order = fill_resting(kit.orders, placed.coid, SIZE)
    await maker.on_fill(maker_fill(601, coid=placed.coid), order)
    await kit.orders.changes.until(lambda: kit.orders.cancelled, WAIT_S)
    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    request = maker.outstanding[published.request_ids[0]]

    await kit.peer.publish_outcome(HedgeOutcome(
        pair=kit.config.pair, request_ids=(request.request_id,), status=FAILED, market="BTC", side="sell",
        requested_size=SIZE, filled_size=Decimal(0), avg_price=None, attempts=1,
        reason="rejected: not enough margin", hedge_client_order_indexes=(), received_ts_ms=now_ms(),
        sent_ts_ms=now_ms(), filled_ts_ms=None, latency_ms=None))
    (paused,) = await kit.events.wait("a", "pause_set", timeout_s=WAIT_S)
    await asyncio.wait_for(cycle, WAIT_S)

    # Cancelled again the moment B's outcome came: no time passed on A's clock, so neither the maker timeout
    # nor the pause between two cancels of the same order; then A paused with B's reason.
    first, second = kit.orders.cancelled
    assert first[1].startswith("partly filled") and second[1] == (
        f"B's hedge of {request.request_id} failed: A pauses")
    assert kit.clock.now == started
    assert kit.orders.order(placed.coid).state is OrderState.CANCELED  # type: ignore[union-attr]
    assert paused.reason.startswith(f"B hedge failed for {request.request_id}: rejected: not enough margin")
    pause = await kit.peer.get_pause()
    assert pause is not None and (pause.by, pause.reason) == ("A", paused.reason)
    # The outcome was taken once, in the resting loop: settle found nothing left to wait for.
    assert len(kit.events.matching("a", "hedge_outcome_received", state="failed")) == 1
    assert not maker.outstanding and not kit.events.matching("a", "hedge_waiting")

    nxt = asyncio.create_task(maker.cycle())  # the next cycle is paused: no new order
    await kit.events.wait("a", "paused", by="A", timeout_s=WAIT_S)
    assert len(kit.orders.sent) == 1
    await kit.peer.clear_pause()
    await asyncio.wait_for(nxt, WAIT_S)


def filled_outcome(kit: UnitKit, request: HedgeRequest) -> HedgeOutcome:
    """B's outcome: `request` hedged in full."""
    return HedgeOutcome(
        pair=kit.config.pair, request_ids=(request.request_id,), status=FILLED, market="BTC",
        side=request.side, requested_size=request.size, filled_size=request.size, avg_price=Decimal("94999"),
        attempts=1, reason=None, hedge_client_order_indexes=(), received_ts_ms=now_ms(), sent_ts_ms=now_ms(),
        filled_ts_ms=now_ms(), latency_ms=1.0)


async def test_no_residual_hedge_while_b_says_it_is_hedging(unit_factory: UnitFactory) -> None:
    # B is hedging a request whose pending entry Redis lost (restarted without persistence): nothing is
    # unacknowledged, and B's heartbeat saying it is busy is the one sign left. A + B is off until B's hedge
    # lands; a residual hedge now would hedge the fill twice.
    kit = await unit_factory("a", hedge_confirm_timeout_s=1, hedge_from_trade_feed_after_s=None)
    await kit.peer.ensure_group()
    await kit.peer.beat("b", 60, {"pid": 0, "busy": True})
    kit.orders.account.positions_by_account[A_ACCOUNT] = SIZE
    maker = kit.maker()
    maker.hedges.outbox.start()
    await asyncio.wait_for(maker.cycle(), WAIT_S)  # waited for B (bounded), then gave the cycle up
    assert not maker.outstanding and not kit.events.matching("a", "hedge_request_published")
    assert kit.orders.sent == [] and await kit.peer.get_pause() is None

    await kit.peer.beat("b", 60, {"pid": 0, "busy": False})  # B idle, and A + B still off: the residual
    cycle = asyncio.create_task(maker.cycle())
    (residual,) = await kit.events.wait("a", "hedge_request_published", reason="residual", timeout_s=WAIT_S)
    assert (residual.side, residual.size) == ("sell", SIZE)
    await kit.peer.publish_outcome(filled_outcome(kit, maker.outstanding[residual.request_ids[0]]))
    await asyncio.wait_for(cycle, WAIT_S)
    assert not maker.outstanding and kit.orders.sent == []


async def test_a_cancel_lost_in_a_redis_call_never_holds_the_end_of_the_resting_loop(
        unit_factory: UnitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stall of `f1143c5` (bench/README.md, "The stall"): the order ended by a fill as the watch of B's
    outcomes made a Redis call (its 5 s recheck was due). redis-py sends through `asyncio.wait_for`, which on
    Python 3.11 returns instead of raising when the cancel lands in the turn the call completes: the cancel
    was lost, the watch ran on, and leaving it (cancel, then an unbounded wait) never returned."""
    kit = await a_with_b_up(unit_factory)
    replies: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
    lost: list[int] = []

    async def receive(self: OutcomeSubscription, timeout_s: float | None) -> tuple[bool, None]:
        reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        replies.put_nowait(reply)
        await asyncio.wait_for(reply, timeout_s)  # as redis-py sends a command (its health-check PING here)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            lost.append(task.cancelling())  # cancelled, yet the call returned: the cancel was lost
        return True, None  # woken without an outcome: the watch reads the store and listens again

    monkeypatch.setattr(OutcomeSubscription, "receive", receive)
    watch = FailedHedges(kit.maker().hedges)
    await watch.__aenter__()
    reply = await asyncio.wait_for(replies.get(), WAIT_S)  # the watch is in its Redis call
    reply.set_result(None)  # Redis answers, and in the same turn the order's end leaves the watch:
    async with asyncio.timeout(WAIT_S):
        await watch.__aexit__(None, None, None)
    assert lost == [1]  # the cancel was lost inside the call (Python 3.11's wait_for), as in the stall
    assert watch._task is not None and watch._task.done()  # and the watch ended all the same


async def test_leaving_the_watch_of_failed_hedges_never_waits_on_a_stuck_cleanup(
        unit_factory: UnitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    kit = await a_with_b_up(unit_factory)
    started, release = asyncio.Event(), asyncio.Event()
    cancels = 0

    async def stuck(self: FailedHedges) -> None:  # a cleanup that loses every cancel
        nonlocal cancels
        started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancels += 1

    monkeypatch.setattr(FailedHedges, "_run", stuck)
    monkeypatch.setattr(FailedHedges, "EXIT_WAIT_S", 0.05)
    watch = FailedHedges(kit.maker().hedges)
    async with watch:
        await asyncio.wait_for(started.wait(), WAIT_S)
    assert cancels == FailedHedges.EXIT_CANCELS  # cancelled again after each lost cancel, a bounded number
    assert watch._task is not None and not watch._task.done()  # then left behind, not waited for
    release.set()
    await asyncio.wait_for(watch._task, WAIT_S)
