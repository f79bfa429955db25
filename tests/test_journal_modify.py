"""A modify of a resting order in the journal: its new price written ahead of the send, the order's price
taken from the exchange's reports (never from a report older than the one it came from), the modify settled
when the exchange shows its price, refuses it (at sendTx or by the sequencer) or ends the order."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.events import EndReason, Event, OrderUpdate, TxOutcome, VenueState
from hedge_strategy.execution.journal import Journal, JournalOrder, OrderState
from hedge_strategy.execution.models import reported_price
from hedge_strategy.execution.reconcile import Reconciler
from hedge_strategy.execution.tracker import OrderTracker
from tests.test_journal import ACCOUNT, make_fill, make_order, make_update
from tests.test_reconcile import BTC, GRACE_S, ScriptedExchange, update
from tests.test_wire_contract_kit import frame

COID = 11000000000001
OLD, NEW = Decimal("95000.0"), Decimal("94990.0")


def at(price: Decimal, ts_ms: int, state: VenueState = VenueState.LIVE,
       end: EndReason | None = None) -> OrderUpdate:
    return dataclasses.replace(make_update(COID, state, end), price=price, ts_ms=ts_ms)


def raw_modify_price(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT modify_price FROM orders WHERE client_order_index = ?", (COID,)).fetchone()
    return row[0]


async def resting(journal: Journal) -> None:
    await journal.record_new(make_order(COID))
    journal.apply_order_update(at(OLD, 1_000))


async def test_the_modify_price_is_on_disk_before_record_modify_returns(path: Path, journal: Journal) -> None:
    await resting(journal)
    await journal.record_modify(COID, NEW)
    assert raw_modify_price(path) == str(NEW)  # committed: a crash after the send still knows it
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (OLD, NEW)  # price: the exchange's
    await journal.close()
    reopened = await Journal.open(path, ACCOUNT)
    try:
        again = reopened.get(COID)
        assert again is not None and (again.price, again.modify_price) == (OLD, NEW)
    finally:
        await reopened.close()


async def test_no_modify_of_an_order_that_ended(journal: Journal) -> None:
    await resting(journal)
    journal.apply_order_update(at(OLD, 2_000, VenueState.FILLED))
    with pytest.raises(ValueError, match="not a live order"):
        await journal.record_modify(COID, NEW)


async def test_the_exchange_showing_the_new_price_confirms_the_modify(journal: Journal) -> None:
    await resting(journal)
    await journal.record_modify(COID, NEW)
    assert journal.apply_order_update(at(OLD, 1_500)) is False  # still at the old price: in flight
    assert journal.get(COID).modify_price == NEW  # type: ignore[union-attr]
    assert journal.apply_order_update(at(NEW, 2_000))
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (NEW, None)
    assert order.state is OrderState.OPEN
    # A report older than the one the price came from (a REST read begun before the stream's update) does
    # not take the order back to its old price; a newer one is the exchange's word.
    journal.apply_order_update(at(OLD, 1_999))
    assert journal.get(COID).price == NEW  # type: ignore[union-attr]
    journal.apply_order_update(at(OLD, 2_500))
    assert journal.get(COID).price == OLD  # type: ignore[union-attr]


async def test_an_order_ended_for_crossing_settles_the_modify(journal: Journal) -> None:
    await resting(journal)
    await journal.record_modify(COID, NEW)
    journal.apply_order_update(at(NEW, 2_000, VenueState.CANCELED, EndReason.POST_ONLY_WOULD_CROSS))
    order = journal.get(COID)
    assert order is not None and order.modify_price is None
    assert (order.state, order.end_reason) == (OrderState.CANCELED, EndReason.POST_ONLY_WOULD_CROSS)


async def test_a_refused_modify_leaves_the_price_the_exchange_showed(path: Path, journal: Journal) -> None:
    await resting(journal)
    await journal.record_modify(COID, NEW)
    journal.modify_settled(COID, "refused (21104 invalid nonce)")
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (OLD, None)
    await journal.flush()
    assert raw_modify_price(path) is None


def test_reported_price_takes_a_live_orders_price_and_settles_a_modify() -> None:
    order = make_order(COID)
    assert reported_price(order, at(NEW, 5), 0) == (NEW, False)  # moved by a modify we do not know of
    assert reported_price(order, at(NEW, 5), 6) == (None, False)  # older than the price held
    assert reported_price(order, at(NEW, 5, VenueState.FILLED), 0) == (None, False)  # an end says no price
    order.modify_price = NEW
    assert reported_price(order, at(NEW, 5), 0) == (NEW, True)
    assert reported_price(order, at(OLD, 5, VenueState.FILLED), 0) == (None, True)


async def test_the_sequencers_refusal_of_a_modify_settles_it(
        journal: Journal, tracker: OrderTracker, events: asyncio.Queue[Event]) -> None:
    await resting(journal)
    await journal.record_modify(COID, NEW)
    assert tracker.txs.modify_sent(COID, "cd" * 40) is None  # no verdict yet
    events.put_nowait(TxOutcome(ACCOUNT, "cd" * 40, 17, None, True, 21700, "order not found"))
    def settled() -> JournalOrder | None:
        order = journal.get(COID)
        return order if order is not None and order.modify_price is None else None

    order = await tracker.wait_for(settled, 5)
    assert (order.price, order.state) == (OLD, OrderState.OPEN)  # resting where it was, not rejected


async def test_reconciliation_takes_the_price_the_exchange_has(
        journal: Journal, tracker: OrderTracker) -> None:
    """An order the exchange shows at another price (a modify whose update the stream missed) is taken at it
    by reconciliation, its modify settled: nothing is sent to put it back."""
    await resting(journal)
    await journal.record_modify(COID, NEW)
    exchange = ScriptedExchange()
    exchange.orders[COID] = dataclasses.replace(update(COID, VenueState.LIVE), price=NEW)
    reconciler = Reconciler(exchange, journal, tracker, [BTC], GRACE_S)  # type: ignore[arg-type]
    await reconciler.run_once("test")
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (NEW, None)
    assert order.state is OrderState.OPEN


def test_an_ioc_keeps_the_limit_it_was_sent_with() -> None:
    ioc = dataclasses.replace(make_order(COID), order_type="ioc")
    assert reported_price(ioc, at(NEW, 5), 0) == (None, False)


async def test_a_report_older_than_the_price_held_does_not_confirm_a_modify_back_to_its_price(
        journal: Journal) -> None:
    # OLD -> NEW shown, then a modify back to OLD: a REST read begun before the first modify executed still
    # shows OLD. It must not settle the modify back (the venue may yet execute it; the entry for B's wash
    # guard would be narrowed to NEW while the order moves to OLD).
    await resting(journal)
    await journal.record_modify(COID, NEW)
    journal.apply_order_update(at(NEW, 2_000))
    await journal.record_modify(COID, OLD)
    journal.apply_order_update(at(OLD, 1_500))
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (NEW, OLD)
    journal.apply_order_update(at(OLD, 2_500))  # the exchange's word now
    assert (order.price, order.modify_price) == (OLD, None)


async def test_an_order_a_modify_re_sized_after_an_unseen_fill_takes_the_exchanges_size(
        journal: Journal) -> None:
    # Half filled at the venue, then the modify (sent for the whole size: the journal had not seen the fill)
    # gives the remainder the whole size again (the simulator's ModifyOrder). The journal's size would end
    # the order FILLED after one more half while a half still rests (A would clear B's wash-guard entry).
    await resting(journal)
    await journal.record_modify(COID, NEW)
    regrown = dataclasses.replace(at(NEW, 2_000), initial_size=Decimal("0.0006"),
                                  filled_size=Decimal("0.0002"), remaining_size=Decimal("0.0004"))
    assert journal.apply_order_update(regrown)
    journal.apply_fill(make_fill(1, COID))
    journal.apply_fill(make_fill(2, COID))
    order = journal.get(COID)
    assert order is not None and order.size == Decimal("0.0006")
    assert (order.filled_size, order.state) == (Decimal("0.0004"), OrderState.PARTIALLY_FILLED)


def captured_resting_order(**changes: object) -> OrderUpdate:
    """The resting bid of ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl line 12 (58100.0,
    `updated_at` 1785431964 s, `transaction_time` 1785431966692910 µs), with `changes` to its payload, as
    the journal's order COID."""
    captured = frame("ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl", 12)["orders"]["1"][0]
    payload = {**captured, **changes}
    return dataclasses.replace(parsing.order_update(payload), account_index=ACCOUNT, client_order_index=COID)


async def test_a_rest_report_from_before_a_modify_in_the_same_second_keeps_the_modified_price(
        journal: Journal) -> None:
    # `updated_at` is whole seconds of block time and need not move when the order changes (capture line 4),
    # so a modify executed within the same second shows the same `updated_at`; only `transaction_time` (µs)
    # tells the reports apart. A REST read begun before the modify, answered after the streamed modify, must
    # not put the old price back.
    before = captured_resting_order()
    modified = captured_resting_order(price="58000.0", transaction_time=1785431966992910)  # +0.3 s
    await journal.record_new(make_order(COID))
    journal.apply_order_update(before)
    await journal.record_modify(COID, Decimal("58000.0"))
    journal.apply_order_update(modified)
    journal.apply_order_update(before)  # the REST read, late
    order = journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (Decimal("58000.0"), None)
