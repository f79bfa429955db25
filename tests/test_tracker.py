"""Unit tests of the fill tracker: events into a real journal, each fill announced once, waiting."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange.events import (
    EndReason,
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    Side,
    StreamDown,
    StreamUp,
    VenueState,
)
from hedge_strategy.execution.journal import Intent, Journal, JournalFill, OrderState, new_order
from hedge_strategy.execution.tracker import OrderTracker
from tests.fixtures.execution import Announcements

ACCOUNT = 101
MARKET = 1


def fill_event(trade_id: int, coid: int, size: str = "0.0002") -> Fill:
    return Fill(
        account_index=ACCOUNT,
        market_id=MARKET,
        trade_id=trade_id,
        order_index=2**48 + coid,
        client_order_index=coid,
        side=Side.BUY,
        size=Decimal(size),
        price=Decimal("95000.0"),
        is_maker=True,
        fee=Decimal("0.0001"),
        ts_ms=5_000 + trade_id,
    )


def update_event(
    coid: int, state: VenueState, end: EndReason | None = None, filled: str = "0"
) -> OrderUpdate:
    return OrderUpdate(
        account_index=ACCOUNT,
        market_id=MARKET,
        client_order_index=coid,
        order_index=2**48 + coid,
        side=Side.BUY,
        state=state,
        end_reason=end,
        price=Decimal("95000.0"),
        initial_size=Decimal("0.0004"),
        filled_size=Decimal(filled),
        remaining_size=Decimal("0.0004") - Decimal(filled),
        ts_ms=5_000,
    )


async def record(journal: Journal, coid: int) -> None:
    await journal.record_new(
        new_order(
            client_order_index=coid,
            account_index=ACCOUNT,
            market_id=MARKET,
            intent=Intent.MAKER,
            side=Side.BUY,
            size=Decimal("0.0004"),
            price=Decimal("95000.0"),
            order_type="post_only",
            now_ms=1_000,
        )
    )


async def test_a_trade_from_stream_and_rest_is_announced_once(
    journal: Journal, events: asyncio.Queue[Event], told: Announcements, tracker: OrderTracker
) -> None:
    await record(journal, 11)
    events.put_nowait(fill_event(1, 11))
    assert await asyncio.wait_for(told.arrived.get(), 2) == 1
    assert not await tracker.ingest_fill(fill_event(1, 11), source="rest")
    events.put_nowait(fill_event(1, 11))  # the stream replays it after a reconnect
    events.put_nowait(fill_event(2, 11))
    assert await asyncio.wait_for(told.arrived.get(), 2) == 2
    assert told.seen == [(1, 11), (2, 11)]
    order = journal.get(11)
    assert order.state is OrderState.FILLED
    assert order.order_index == 2**48 + 11  # learned from the fill
    assert journal.unannounced_fills() == []


async def test_fill_for_unknown_order_is_recorded_and_announced_without_order(
    journal: Journal, told: Announcements, tracker: OrderTracker
) -> None:
    assert await tracker.ingest_fill(fill_event(3, 77), source="rest")
    assert told.seen == [(3, None)]
    assert [f.trade_id for f in journal.fills_for(77)] == [3]


async def test_wait_terminal_wakes_on_the_event(
    journal: Journal, events: asyncio.Queue[Event], tracker: OrderTracker
) -> None:
    await record(journal, 21)
    waiter = asyncio.create_task(tracker.wait_terminal(21, timeout=2))
    events.put_nowait(update_event(21, VenueState.LIVE))
    events.put_nowait(update_event(21, VenueState.CANCELED, EndReason.POST_ONLY_WOULD_CROSS))
    order = await waiter
    assert (order.state, order.end_reason) == (OrderState.CANCELED, EndReason.POST_ONLY_WOULD_CROSS)


async def test_wait_terminal_times_out_while_the_order_rests(journal: Journal, tracker: OrderTracker) -> None:
    await record(journal, 22)
    tracker.apply_update(update_event(22, VenueState.LIVE), source="rest")
    with pytest.raises(TimeoutError):
        await tracker.wait_terminal(22, timeout=0.05)
    with pytest.raises(KeyError):
        await tracker.wait_terminal(999, timeout=0.05)


async def test_wait_filled_and_fills_applied(
    journal: Journal, events: asyncio.Queue[Event], tracker: OrderTracker
) -> None:
    await record(journal, 31)
    filled = asyncio.create_task(tracker.wait_filled(31, Decimal("0.0004"), timeout=2))
    # The exchange says filled before the fills themselves arrive.
    events.put_nowait(update_event(31, VenueState.FILLED, filled="0.0004"))
    order = await filled
    assert order.filled_size == Decimal("0.0004")
    with pytest.raises(TimeoutError):  # the exchange counted 0.0004, the journal holds no fill yet
        await tracker.wait_fills_applied(31, timeout=0.05)
    applied = asyncio.create_task(tracker.wait_fills_applied(31, timeout=2))
    events.put_nowait(fill_event(4, 31))
    events.put_nowait(fill_event(5, 31))
    await applied
    assert journal.fills_total(31) == Decimal("0.0004")


async def test_failed_callback_keeps_the_fill_for_a_retry(
    journal: Journal, told: Announcements, tracker: OrderTracker
) -> None:
    await record(journal, 41)
    told.fail = True
    assert await tracker.ingest_fill(fill_event(6, 41), source="ws")
    assert [f.trade_id for f in journal.unannounced_fills()] == [6]
    told.fail = False
    assert await tracker.announce_pending() == 1
    assert await tracker.announce_pending() == 0
    assert told.seen == [(6, 41)]


async def test_fill_stored_before_a_crash_is_announced_on_restart(path: Path, told: Announcements) -> None:
    crashed = await Journal.open(path, ACCOUNT)
    await record(crashed, 51)
    crashed.apply_fill(
        JournalFill(
            7,
            51,
            ACCOUNT,
            MARKET,
            Side.BUY,
            Decimal("0.0002"),
            Decimal("95000.0"),
            Decimal(0),
            True,
            9_000,
            "ws",
        )
    )
    await crashed.close()  # died before the strategy was told

    journal = await Journal.open(path, ACCOUNT)
    tracker = OrderTracker(journal, asyncio.Queue(), on_fill=told)
    try:
        await tracker.start()
        assert told.seen == [(7, 51)]
    finally:
        await tracker.stop()
        await journal.close()
    again = await Journal.open(path, ACCOUNT)
    try:
        assert again.unannounced_fills() == []
    finally:
        await again.close()


async def test_positions_and_stream_state_follow_events(
    events: asyncio.Queue[Event], tracker: OrderTracker
) -> None:
    long = PositionSnapshot(ACCOUNT, MARKET, Decimal("0.0004"), Decimal("95000"), Decimal(0), Decimal(0))
    events.put_nowait(StreamUp(ACCOUNT, reconnect=False))
    events.put_nowait(long)
    await tracker.wait_for(lambda: tracker.positions.get(MARKET), timeout=2)
    assert tracker.stream_connected
    events.put_nowait(StreamDown(ACCOUNT, reason="test"))
    events.put_nowait(PositionSnapshot(ACCOUNT, MARKET, Decimal(0), Decimal(0), Decimal(0), Decimal(0)))
    await tracker.wait_for(lambda: MARKET not in tracker.positions, timeout=2)
    assert not tracker.stream_connected
    reconnect = asyncio.create_task(tracker.wait_reconnect(tracker.reconnects, timeout=2))
    events.put_nowait(StreamUp(ACCOUNT, reconnect=True))
    assert await reconnect == 1


async def test_a_bad_event_does_not_stop_the_tracker(
    journal: Journal, events: asyncio.Queue[Event], told: Announcements, tracker: OrderTracker
) -> None:
    await record(journal, 61)
    other_account = Fill(
        account_index=999,
        market_id=MARKET,
        trade_id=9,
        order_index=1,
        client_order_index=61,
        side=Side.BUY,
        size=Decimal("0.0002"),
        price=Decimal("1"),
        is_maker=True,
        fee=Decimal(0),
        ts_ms=1,
    )
    events.put_nowait(other_account)
    events.put_nowait("garbage")  # type: ignore[arg-type]
    events.put_nowait(fill_event(10, 61))
    assert await asyncio.wait_for(told.arrived.get(), 2) == 10
    assert told.seen == [(10, 61)]


async def test_caller_transition_wakes_waiters(journal: Journal, tracker: OrderTracker) -> None:
    await record(journal, 71)
    waiter = asyncio.create_task(tracker.wait_terminal(71, timeout=2))
    await asyncio.sleep(0)  # one loop turn: the waiter parks on the change event
    assert tracker.transition(71, OrderState.REJECTED, reason="code 21121")
    assert (await waiter).reason == "code 21121"
