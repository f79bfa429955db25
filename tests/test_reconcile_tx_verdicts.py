"""The settle rule for a send the API accepted (tx_verdicts.py): the sequencer's refusal, streamed or read by
hash when the order is not found by its client order index, ends the order REJECTED at once with the venue's
reason; the grace is kept for an order whose transaction is not known, or executed and not indexed yet."""

from __future__ import annotations

import asyncio

import pytest

from hedge_strategy.exchange.events import SEQUENCER_REFUSED, EndReason, Event, TxOutcome, VenueState
from hedge_strategy.execution.journal import Journal, OrderState
from hedge_strategy.execution.reconcile import NEVER_EXECUTED, Reconciler
from hedge_strategy.execution.tracker import OrderTracker
from tests.test_reconcile import ACCOUNT, GRACE_S, ScriptedExchange, exchange, reconciler, record, update

TX = "ab" * 40
__all__ = ["exchange", "reconciler"]  # the fixtures, imported for pytest


def outcome(coid: int | None, *, refused: bool = True, tx_hash: str = TX) -> TxOutcome:
    return TxOutcome(ACCOUNT, tx_hash, 14, coid, refused, 29500 if refused else None,
                     "price band" if refused else "")


async def test_a_streamed_refusal_settles_the_send_at_once(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, events: asyncio.Queue[Event]
) -> None:
    await record(journal, 21, sent_age_s=0)  # accepted by the API just now: the grace has not run
    confirming = asyncio.create_task(reconciler.confirm_final(21, timeout=GRACE_S, first_look_s=GRACE_S))
    events.put_nowait(outcome(21))
    order = await confirming
    assert (order.state, order.reason) == (OrderState.REJECTED, f"{SEQUENCER_REFUSED}: 29500 price band")
    assert exchange.lookups == [] and exchange.tx_lookups == []  # the stream's verdict sufficed


async def test_an_order_not_found_is_settled_by_its_transactions_refusal(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, tracker: OrderTracker
) -> None:
    await record(journal, 22, sent_age_s=0)
    tracker.txs.sent(22, TX)
    exchange.txs[TX] = outcome(None)  # the coid is known from the send's hash
    order = await reconciler.confirm_final(22, timeout=GRACE_S, first_look_s=0.05)
    assert order.state is OrderState.REJECTED and order.reason is not None
    assert order.reason.startswith(SEQUENCER_REFUSED)
    assert exchange.lookups == [[22]] and exchange.tx_lookups == [TX]  # one look each, then settled


@pytest.mark.parametrize("known", ["executed", "not known", "lookup fails", "no hash"])
async def test_without_a_refusal_the_grace_is_kept(
    known: str, exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, tracker: OrderTracker
) -> None:
    await record(journal, 23, sent_age_s=0)
    if known != "no hash":
        tracker.txs.sent(23, TX)
    if known == "executed":  # the order exists; the venue's REST has not indexed it yet
        exchange.txs[TX] = outcome(23, refused=False)
    if known == "lookup fails":
        exchange.failing.add("tx")
    order = await reconciler.confirm_final(23, timeout=0.3, first_look_s=0.05)
    assert order.state is OrderState.PENDING_SUBMIT  # within the grace: left as it was
    asked = {"no hash": [], "lookup fails": [], "executed": [TX], "not known": [TX] * len(exchange.lookups)}
    assert exchange.tx_lookups == asked[known]  # an executed verdict is kept: not asked again


async def test_a_refusal_never_overrides_an_order_the_exchange_acknowledged(
    reconciler: Reconciler, journal: Journal, tracker: OrderTracker
) -> None:
    await record(journal, 24, sent_age_s=0)
    tracker.apply_update(update(24, VenueState.LIVE), "ws")
    assert not tracker.apply_tx_outcome(outcome(24), "ws")
    assert journal.get(24).state is OrderState.OPEN  # type: ignore[union-attr]
    assert not tracker.apply_tx_outcome(outcome(999), "ws")  # not ours: nothing to settle
    assert not tracker.apply_tx_outcome(outcome(None, tx_hash="cd" * 40), "ws")  # no order named


async def test_a_refused_cancel_ends_the_wait_for_it_and_leaves_the_order_live(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, tracker: OrderTracker,
    events: asyncio.Queue[Event]
) -> None:
    await record(journal, 25, sent_age_s=0)
    tracker.apply_update(update(25, VenueState.LIVE), "ws")
    tracker.txs.cancel_sent(25, "cd" * 40)
    confirming = asyncio.create_task(reconciler.confirm_final(25, timeout=600))  # the old wait: all of it
    events.put_nowait(outcome(None, tx_hash="cd" * 40))
    order = await asyncio.wait_for(confirming, 60)  # returns on the refusal, long before its timeout
    assert order.state is OrderState.OPEN and tracker.txs.last_cancel_refused(25) is not None
    assert exchange.lookups == []  # no REST look was due yet: the verdict ended the wait

    # The verdict of the next cancel comes before its send's answer (no speed bump): kept by hash, it ends
    # the wait as soon as the send names it.
    events.put_nowait(outcome(None, tx_hash="ef" * 40))
    await tracker.wait_for(lambda: tracker.txs.outcome("ef" * 40), 60)
    assert tracker.txs.cancel_sent(25, "ef" * 40) is not None
    order = await asyncio.wait_for(reconciler.confirm_final(25, timeout=600), 60)
    assert order.state is OrderState.OPEN
    # A cancel sent again, not refused: the wait is for it, and its cancel ends the order.
    assert tracker.txs.cancel_sent(25, "01" * 40) is None
    confirming = asyncio.create_task(reconciler.confirm_final(25, timeout=600))
    events.put_nowait(update(25, VenueState.CANCELED, EndReason.CANCELED_BY_US))
    assert (await asyncio.wait_for(confirming, 60)).state is OrderState.CANCELED


async def test_an_order_not_found_within_its_grace_is_looked_at_again_when_the_grace_ends(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal
) -> None:
    """Chaos seed 1 (session 6): a B killed between its write-ahead and its send left an IOC the next B
    resumed; its first look came 8.8 s after the order's creation (within the 10 s grace), the next one a
    doubled wait later, so the order was settled 18.8 s after its creation. The next look now comes when the
    grace ends."""
    await record(journal, 24, sent_age_s=GRACE_S - 1.5)  # its grace ends in 1.5 s; no transaction known
    confirmed = await reconciler.confirm_final(24, timeout=10, first_look_s=1.0)
    assert (confirmed.state, confirmed.reason) == (OrderState.REJECTED, NEVER_EXECUTED)
    assert exchange.lookups == [[24], [24]]
    sent_ms = confirmed.sent_ms
    assert sent_ms is not None
    ages = [(at - sent_ms) / 1000 for at in exchange.lookup_ms]
    # The first look within the grace (1 s in), the second once it is over: not a doubled wait (2 s) later,
    # when the order would be 6.5 s old.
    assert ages[0] < GRACE_S <= ages[1] < GRACE_S + 1.4
