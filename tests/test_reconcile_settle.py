"""What the reconciler settles between runs: an accepted send whose order never appears, and fills that wait
for their order. Against the scripted stand-in for the adapter of tests/test_reconcile.py."""

from __future__ import annotations

import asyncio
import dataclasses

from hedge_strategy.exchange.events import VenueState
from hedge_strategy.execution.journal import Journal, OrderState
from hedge_strategy.execution.reconcile import NEVER_EXECUTED, NEVER_REACHED, Reconciler
from hedge_strategy.execution.settle import HELD_FILL_PATIENCE_S
from hedge_strategy.execution.tracker import OrderTracker
from tests.fixtures.execution import Announcements
from tests.test_reconcile import BTC, ScriptedExchange, record, trade, update
from tests.test_tracker_order_index import journaled

GRACE_S = 0.3


def quick(exchange: ScriptedExchange, journal: Journal, tracker: OrderTracker) -> Reconciler:
    return Reconciler(exchange, journal, tracker, [BTC], GRACE_S, trade_margin_s=1.0)  # type: ignore[arg-type]


async def test_an_accepted_send_that_never_appears_is_settled_by_the_driver(
    journal: Journal, tracker: OrderTracker
) -> None:
    exchange = ScriptedExchange()
    reconciler = quick(exchange, journal, tracker)
    await record(journal, 21)
    journal.mark_sent(21, journal.get(21).created_ms)  # HTTP 200: accepted by the API, nothing more
    driver = asyncio.create_task(reconciler.run(interval_s=3600))  # no periodic run will come to the rescue
    try:
        order = await tracker.wait_terminal(21, timeout=10)  # woken by the settlement, not by a poll of ours
    finally:
        driver.cancel()
    assert (order.state, order.reason) == (OrderState.REJECTED, NEVER_EXECUTED)
    assert exchange.lookups == [[21]]
    assert reconciler.completed_runs == 0  # settled by one lookup, not a full reconciliation


async def test_an_overdue_send_found_on_the_exchange_takes_its_state(
    journal: Journal, tracker: OrderTracker
) -> None:
    exchange = ScriptedExchange()
    reconciler = quick(exchange, journal, tracker)
    await record(journal, 22, sent_age_s=5)
    journal.transition(22, OrderState.UNKNOWN)  # a send that timed out
    await record(journal, 23, sent_age_s=5)
    journal.transition(23, OrderState.UNKNOWN)
    exchange.orders = {22: update(22, VenueState.FILLED, filled="0.0004")}
    await reconciler.settle_due()
    assert journal.get(22).state is OrderState.FILLED
    assert (journal.get(23).state, journal.get(23).reason) == (OrderState.REJECTED, NEVER_REACHED)
    assert exchange.lookups == [[22, 23]]


async def test_a_send_within_its_grace_is_not_looked_up(journal: Journal, tracker: OrderTracker) -> None:
    exchange = ScriptedExchange()
    reconciler = Reconciler(exchange, journal, tracker, [BTC], 60.0)  # type: ignore[arg-type]
    await record(journal, 24, sent_age_s=0)
    await reconciler.settle_due()
    assert exchange.lookups == [] and journal.get(24).state is OrderState.PENDING_SUBMIT


async def test_a_held_fill_is_matched_by_a_rest_lookup_of_its_order(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    exchange = ScriptedExchange()
    reconciler = quick(exchange, journal, tracker)
    await record(journal, 25, sent_age_s=0)  # accepted; its order update was lost
    exchange.orders = {25: update(25, VenueState.LIVE, filled="0.0002")}
    fill = dataclasses.replace(trade(250, 25, 0), client_order_index=None)
    assert not await tracker.ingest_fill(fill, source="ws")
    driver = asyncio.create_task(reconciler.run(interval_s=3600))
    try:
        assert await asyncio.wait_for(told.arrived.get(), HELD_FILL_PATIENCE_S + 10) == 250
    finally:
        driver.cancel()
    assert told.seen == [(250, 25)]
    assert [25] in exchange.lookups
    assert journal.get(25).order_index == 2**48 + 25 and tracker.held_fills == []


async def test_a_fill_the_lookup_cannot_place_is_given_up_not_given_to_index_0(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    exchange = ScriptedExchange()
    reconciler = quick(exchange, journal, tracker)
    fill = dataclasses.replace(trade(260, 0, 0), client_order_index=None)  # an order placed outside the bot
    assert not await tracker.ingest_fill(fill, source="reconcile")
    report = await reconciler.run_once("periodic")
    assert report.recovered_fills == [] and len(tracker.held_fills) == 1  # still waiting: not yet too old
    tracker.give_up_held(older_than_s=0)
    assert tracker.held_fills == [] and told.seen == [] and not journaled(journal, fill)
