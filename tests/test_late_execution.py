"""A send that executed late: the bot recorded it REJECTED ("accepted, never executed" / "never reached the
exchange": not found by its client order index past the grace), and then the exchange reports it, on the
stream or over REST. The journal takes the exchange's word at once (`Journal._executed_late`), so A sees its
maker order resting again and its executor cancels it at once (A may have placed its next order meanwhile,
and B's wash guard names only that one), and B's chase counts the late fill, so nothing is hedged twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hedge_strategy.exchange import MarketInfo, SendResult, SendStatus
from hedge_strategy.exchange.events import EndReason, VenueState
from hedge_strategy.execution.chase_loop import Chase
from hedge_strategy.execution.journal import Journal, OrderState
from hedge_strategy.execution.orders import OrderExecutor
from hedge_strategy.execution.reconcile import NEVER_EXECUTED, NEVER_REACHED, Reconciler
from hedge_strategy.execution.tracker import OrderTracker
from hedge_strategy.observe import NO_EVENTS, HedgeMetrics, RoleEvents
from tests.fixtures.execution import Announcements
from tests.test_journal import make_fill, make_order, make_update
from tests.test_reconcile import BTC, GRACE_S, ScriptedExchange, update


async def test_an_order_update_for_a_rejected_order_takes_the_exchanges_state(journal: Journal) -> None:
    await journal.record_new(make_order(31))
    journal.mark_sent(31, 1_500)
    assert journal.transition(31, OrderState.REJECTED, reason=NEVER_EXECUTED)

    assert journal.apply_order_update(make_update(31, VenueState.LIVE))  # the sequencer ran it after all
    order = journal.get(31)
    assert (order.state, order.reason) == (OrderState.OPEN, None)
    assert order in journal.unresolved()  # A's next cycle cancels it before placing anything

    journal.apply_order_update(make_update(31, VenueState.CANCELED, EndReason.CANCELED_BY_US))
    assert journal.get(31).state is OrderState.CANCELED


async def test_a_fill_of_a_rejected_ioc_counts_toward_the_chase_that_sent_it(journal: Journal) -> None:
    """B's attempt 1 was settled as never reached and sent again; its late fill arrives while the chase
    runs: the chase's remaining size (what the next send is for) shrinks by it at once."""
    chase = Chase(Decimal("0.0004"))
    await journal.record_new(make_order(41, size="0.0004"))
    journal.mark_sent(41, 1_500)
    assert journal.transition(41, OrderState.REJECTED, reason=NEVER_REACHED)
    chase.attempts.append(journal.get(41))  # the journal's live order, as the chase holds it
    assert chase.remaining == Decimal("0.0004")

    assert journal.apply_fill(make_fill(410, 41, size="0.0003")) is not None
    order = journal.get(41)
    assert (order.state, order.filled_size) == (OrderState.PARTIALLY_FILLED, Decimal("0.0003"))
    assert chase.remaining == Decimal("0.0001")  # never hedged twice

    journal.apply_fill(make_fill(411, 41, size="0.0001"))
    assert journal.get(41).state is OrderState.FILLED and chase.remaining == 0


async def test_reconciliation_takes_a_rejected_order_found_resting(
    journal: Journal, tracker: OrderTracker, told: Announcements
) -> None:
    """Found in the open orders, it is the exchange's again (it used to be left as an orphan)."""
    exchange = ScriptedExchange()
    reconciler = Reconciler(exchange, journal, tracker, [BTC], GRACE_S, trade_margin_s=1.0)  # type: ignore[arg-type]
    await journal.record_new(make_order(51))
    journal.mark_sent(51, 1_500)
    assert journal.transition(51, OrderState.REJECTED, reason=NEVER_EXECUTED)
    exchange.orders = {51: update(51, VenueState.LIVE)}

    report = await reconciler.run_once("periodic")
    assert report.orphans == [] and report.resolved == {51: OrderState.OPEN}
    assert journal.get(51).state is OrderState.OPEN


class CancellingExchange(ScriptedExchange):
    """The scripted exchange, answering cancels (recorded with the market they named)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancels: list[tuple[str, int]] = []
        self.cancelled = asyncio.Event()

    def market_by_id(self, market_id: int) -> MarketInfo:
        assert market_id == BTC.market_id
        return BTC

    async def cancel(self, market: MarketInfo, coid: int) -> SendResult:
        self.cancels.append((market.symbol, coid))
        self.cancelled.set()
        return SendResult(SendStatus.ACCEPTED, 200, "", None)


def executor(exchange: CancellingExchange, journal: Journal, tracker: OrderTracker) -> OrderExecutor:
    reconciler = Reconciler(exchange, journal, tracker, [BTC], GRACE_S, trade_margin_s=1.0)  # type: ignore[arg-type]
    return OrderExecutor(exchange, journal, tracker, reconciler, name="A",  # type: ignore[arg-type]
                         events=RoleEvents(NO_EVENTS, "a"), metrics=HedgeMetrics("t", "a", enabled=False),
                         request_timeout_s=1.0, unknown_grace_s=GRACE_S)


async def test_a_post_only_order_that_executed_late_is_cancelled_at_once(
    journal: Journal, tracker: OrderTracker
) -> None:
    """A gave the order up (REJECTED, never executed) and may have placed its next one, the only one B's wash
    guard knows: the exchange's report of the old one after all makes its executor cancel it at once."""
    exchange = CancellingExchange()
    executor(exchange, journal, tracker)
    await journal.record_new(make_order(61))
    journal.mark_sent(61, 1_500)
    assert journal.transition(61, OrderState.REJECTED, reason=NEVER_EXECUTED)

    assert journal.apply_order_update(make_update(61, VenueState.LIVE))  # the sequencer ran it after all
    await asyncio.wait_for(exchange.cancelled.wait(), timeout=5)
    assert exchange.cancels == [("BTC", 61)]


async def test_an_order_that_executed_late_and_ended_is_not_cancelled(
    journal: Journal, tracker: OrderTracker
) -> None:
    """Reported filled (or cancelled) when it shows up again: nothing rests, nothing is sent."""
    exchange = CancellingExchange()
    orders = executor(exchange, journal, tracker)
    await journal.record_new(make_order(62, size="0.0002"))
    journal.mark_sent(62, 1_500)
    assert journal.transition(62, OrderState.REJECTED, reason=NEVER_EXECUTED)

    assert journal.apply_fill(make_fill(620, 62, size="0.0002")) is not None  # filled in full, late
    assert journal.get(62).state is OrderState.FILLED
    assert not orders._late_cancels  # no cancel scheduled (one would be a task held here until it ends)
    assert exchange.cancels == []
