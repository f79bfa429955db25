"""Fills that name no client order index (older venue captures lack `ask_client_id` / `bid_client_id`):
matched to their order by the exchange order index, held until it is known, never given to index 0."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path

from hedge_strategy.exchange.events import Event, Fill, VenueState
from hedge_strategy.execution.journal import Journal
from hedge_strategy.execution.tracker import OrderTracker, journal_fill
from tests.fixtures.execution import Announcements
from tests.test_tracker import fill_event, record, update_event


def anonymous(fill: Fill) -> Fill:
    """The same fill as an older capture shows it: no client order index of our side."""
    return dataclasses.replace(fill, client_order_index=None)


def journaled(journal: Journal, fill: Fill) -> bool:
    """Whether the journal holds the trade `fill` reports, under any order (0: the order is not compared)."""
    return journal.recorded(journal_fill(fill, "test", 0)) is not None


async def test_a_fill_after_its_order_update_is_matched_by_order_index(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    await record(journal, 11)
    tracker.apply_update(update_event(11, VenueState.LIVE), source="ws")
    assert await tracker.ingest_fill(anonymous(fill_event(1, 11)), source="ws")
    assert told.seen == [(1, 11)]
    assert [f.client_order_index for f in journal.fills_for(11)] == [11]


async def test_a_fill_before_its_order_update_is_held_then_applied(
    journal: Journal, events: asyncio.Queue[Event], tracker: OrderTracker, told: Announcements
) -> None:
    await record(journal, 12)
    held = anonymous(fill_event(2, 12))
    assert not await tracker.ingest_fill(held, source="ws")
    assert [h.fill.trade_id for h in tracker.held_fills] == [2]
    assert told.seen == [] and journal.fills_for(0) == [] and not journaled(journal, held)
    events.put_nowait(update_event(12, VenueState.LIVE, filled="0.0002"))  # names exchange order 2^48 + 12
    assert await asyncio.wait_for(told.arrived.get(), 2) == 2
    assert told.seen == [(2, 12)]
    assert tracker.held_fills == []
    assert journal.fills_total(12) == Decimal("0.0002")


async def test_the_order_index_is_learned_from_a_fill_that_names_both(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    await record(journal, 13)
    assert await tracker.ingest_fill(fill_event(3, 13), source="ws")  # names 13 and 2^48 + 13
    assert await tracker.ingest_fill(anonymous(fill_event(4, 13)), source="rest")
    assert told.seen == [(3, 13), (4, 13)]


async def test_a_known_order_index_in_the_journal_survives_a_restart(path: Path, told: Announcements) -> None:
    journal = await Journal.open(path, 101)
    await record(journal, 14)
    journal.transition(14, journal.get(14).state, order_index=2**48 + 14)
    await journal.close()
    reopened = await Journal.open(path, 101)
    tracker = OrderTracker(reopened, asyncio.Queue(), on_fill=told)
    try:
        assert await tracker.ingest_fill(anonymous(fill_event(5, 14)), source="reconcile")
        assert told.seen == [(5, 14)]
    finally:
        await reopened.close()


async def test_an_order_without_client_index_never_claims_a_fill(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    # An order placed outside the bot carries client order index 0 on the venue.
    tracker.apply_update(update_event(0, VenueState.LIVE), source="ws")
    assert not await tracker.ingest_fill(anonymous(fill_event(6, 0)), source="ws")
    assert [h.fill.trade_id for h in tracker.held_fills] == [6]
    (given_up,) = tracker.give_up_held(older_than_s=0)
    assert given_up.trade_id == 6
    assert tracker.held_fills == [] and told.seen == [] and not journaled(journal, given_up)
    # Seen again later (the trades endpoint): not held a second time.
    assert not await tracker.ingest_fill(anonymous(fill_event(6, 0)), source="reconcile")
    assert tracker.held_fills == []


async def test_a_trade_already_applied_is_not_held_again(path: Path, told: Announcements) -> None:
    journal = await Journal.open(path, 101)
    first = OrderTracker(journal, asyncio.Queue(), on_fill=told)
    await record(journal, 15)
    assert await first.ingest_fill(fill_event(7, 15, size="0.0004"), source="ws")  # fills it: settled
    await journal.close()
    # After a restart the settled order is not in memory; the trades endpoint shows the trade without ids.
    reopened = await Journal.open(path, 101)
    second = OrderTracker(reopened, asyncio.Queue(), on_fill=told)
    try:
        assert not await second.ingest_fill(anonymous(fill_event(7, 15, size="0.0004")), source="reconcile")
        assert second.held_fills == [] and told.seen == [(7, 15)]
    finally:
        await reopened.close()
