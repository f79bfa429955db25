"""A's wait for a maker order whose send had no verdict (`maker_unsettled.py`), fast: the fake executor's
send answers UNKNOWN as an unanswered one is answered, its REST look finds the order on the exchange from a
time of the test's clock on (`unanswered_lands_at`) with the fills the test scripts, and its waits pass the
clock at once (`fixtures/fake_orders.py`). That a fill found so and streamed again later is told once is the
tracker's: `test_reconcile.py`, `test_an_order_whose_send_had_no_verdict_is_found_filled_by_a_check_...`.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest

from hedge_strategy.bus import FILLED, HedgeOutcome, now_ms
from hedge_strategy.exchange import Purpose, Refusal, RefusalKind, Role, SendResult, SendStatus, Side
from hedge_strategy.execution import NEVER_REACHED, PAST_THE_GRACE_S, Intent, OrderKind, OrderSpec, OrderState
from hedge_strategy.maker_unsettled import look_times
from tests.fixtures.fake_orders import BTC, UnitFactory, UnitKit, a_with_b_up

WAIT_S = 5.0  # bound on every wait for something that happens at once
QUANTITY = Decimal("0.0002")  # the unit config's
NO_VERDICT = SendResult(SendStatus.UNKNOWN, None, "no answer within 2 s", "0xabc",
                        Refusal(RefusalKind.TRANSPORT, "timed out"))
# A look is due `order_lookup_after_s` after the send by the wall clock (the send's time is the journal's):
# the test's clock is then behind by the real time the send's bookkeeping took, a few ms (a loaded machine:
# more), so a look lands at most this much before its nominal time on the test's clock, never after it.
EARLY_BY_AT_MOST_S = 0.5


def on_time(looks: list[float], nominal: list[float]) -> bool:
    return len(looks) == len(nominal) and all(t - EARLY_BY_AT_MOST_S < at <= t + 1e-9  # float sums' rounding
                                              for at, t in zip(looks, nominal, strict=True))


def lookup_after_s(kit: UnitKit) -> float:
    return kit.config.exchange.order_lookup_after_s


def grace_s(kit: UnitKit) -> float:
    return kit.config.exchange.unknown_order_grace_s


def looks_at(kit: UnitKit, start: float) -> list[float]:
    return [at - start for at, _ in kit.orders.rest_checks]


async def answer_hedged(kit: UnitKit, cycle: asyncio.Task[None]) -> None:
    """B answers A's one hedge request filled; A's cycle then ends."""
    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    await kit.peer.publish_outcome(HedgeOutcome(
        pair=kit.config.pair, request_ids=published.request_ids, status=FILLED, market="BTC", side="sell",
        requested_size=published.size, filled_size=published.size, avg_price=Decimal("94998"), attempts=1,
        reason=None, hedge_client_order_indexes=(), received_ts_ms=now_ms(), sent_ts_ms=now_ms(),
        filled_ts_ms=now_ms(), latency_ms=1.0))
    await asyncio.wait_for(cycle, WAIT_S)


async def left_unknown(kit: UnitKit, lands_in_s: float) -> int:
    """A maker order an earlier cycle sent, its send without a verdict (still UNKNOWN), on the exchange
    `lands_in_s` from now (`math.inf`: never): its client order index."""
    kit.orders.unanswered_lands_at = kit.clock.now + lands_in_s
    coid = kit.orders.next_coid(Role.A, Purpose.MAKER, "coid")
    kit.orders.answers = [NO_VERDICT]
    sent = await kit.orders.submit(OrderSpec(coid, Intent.MAKER, BTC, Side.BUY, QUANTITY,
                                             kit.orders.account.bids[1], OrderKind.POST_ONLY))
    assert sent.order.state is OrderState.UNKNOWN
    return coid


def test_the_looks_come_a_lookup_delay_after_the_send_and_halfway_through_the_grace() -> None:
    assert look_times(0.0, 1.0, 10.0) == [1.0, 5.0]
    assert look_times(0.25, 1.0, 10.0) == [0.75, 4.75]
    assert look_times(3.0, 1.0, 10.0) == [0.0, 2.0]  # the lookup delay over already: the first at once
    assert look_times(4.5, 1.0, 10.0) == [0.0]  # halfway is less than a lookup delay after it: one look
    assert look_times(9.5, 1.0, 10.0) == [0.0]
    assert look_times(0.0, 1.0, 2.0) == [1.0]
    assert look_times(0.0, 1.0, 1.0) == []  # no look before the grace's end: its reconciliation looks
    assert look_times(0.0, 1.0, 0.0) == []


async def test_an_unanswered_create_the_exchange_filled_is_found_a_lookup_delay_after_and_hedged(
        unit_factory: UnitFactory) -> None:
    # The chaos bench's ws_silence: A's create written to a silent account stream, no answer; the exchange
    # placed it, and it filled at once.
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()  # what start-up does: the outbox publishes what on_fill records
    start = kit.clock.now
    kit.orders.stream_silent_from = start
    kit.orders.answers = [NO_VERDICT]
    kit.orders.unanswered_lands_at = start
    kit.orders.rest_fills = [(start + 0.5, QUANTITY)]
    cycle = asyncio.create_task(maker.cycle())

    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    assert published.reason == "fill" and published.size == QUANTITY
    (sent,) = kit.orders.sent
    assert [coid for _, coid in kit.orders.rest_checks] == [sent.coid]
    assert on_time(looks_at(kit, start), [lookup_after_s(kit)])  # not the grace: found by the lookup
    assert kit.orders.reconciles == []
    await answer_hedged(kit, cycle)
    order = kit.orders.order(sent.coid)
    assert order is not None and (order.state, order.filled_size) == (OrderState.FILLED, QUANTITY)
    assert len(kit.events.matching("a", "hedge_request_published")) == 1
    assert kit.orders.cancelled == [] and len(kit.orders.sent) == 1


async def test_one_that_landed_late_is_found_by_the_second_look_halfway_through_the_grace(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()
    start = kit.clock.now
    kit.orders.answers = [NO_VERDICT]
    kit.orders.unanswered_lands_at = start + 2.0  # not there at the first look: not taken as never placed
    kit.orders.rest_fills = [(start + 2.5, QUANTITY)]
    cycle = asyncio.create_task(maker.cycle())

    await answer_hedged(kit, cycle)
    assert on_time(looks_at(kit, start), [lookup_after_s(kit), grace_s(kit) / 2])
    assert kit.orders.reconciles == []
    assert len(kit.events.matching("a", "hedge_request_published")) == 1


async def test_one_found_nowhere_waits_out_the_grace_before_it_is_taken_as_never_placed(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    kit.orders.answers = [NO_VERDICT]  # and it never reaches the exchange
    await kit.maker().cycle()

    (sent,) = kit.orders.sent
    assert on_time(looks_at(kit, start), [lookup_after_s(kit), grace_s(kit) / 2])  # two looks, no more
    reconciled = [at - start for at in kit.orders.reconciles]
    assert on_time(reconciled, [grace_s(kit) + PAST_THE_GRACE_S])  # once the grace is over, as before
    order = kit.orders.order(sent.coid)
    assert order is not None and (order.state, order.reason) == (OrderState.REJECTED, NEVER_REACHED)
    assert kit.orders.cancelled == []


async def test_an_unanswered_create_found_resting_is_as_resting_orders_are(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    kit.orders.answers = [NO_VERDICT]
    kit.orders.unanswered_lands_at = start
    await kit.maker().cycle()  # ends when the order is old

    (sent,) = kit.orders.sent
    assert on_time(looks_at(kit, start), [lookup_after_s(kit)])
    assert kit.orders.reconciles == []
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")]


async def test_an_order_left_unknown_and_found_resting_at_a_cycle_start_is_cancelled_before_anything_new(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    coid = await left_unknown(kit, lands_in_s=0.0)
    await kit.maker().cycle()

    assert [c for _, c in kit.orders.rest_checks] == [coid]
    assert on_time(looks_at(kit, start), [lookup_after_s(kit)])
    assert kit.orders.cancelled == [(coid, "left from an earlier cycle")]
    assert len(kit.orders.sent) == 1  # nothing new in this cycle
    assert kit.orders.reconciles == []


async def test_on_shutdown_an_order_left_unknown_is_looked_up_and_cancelled_when_found_resting(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    coid = await left_unknown(kit, lands_in_s=0.0)
    maker = kit.maker()
    maker.rt.stop.set()  # the stop signal does not cut the wait short: A must know whether the order rests
    await maker.shut_down()

    assert on_time(looks_at(kit, start), [lookup_after_s(kit)])
    assert kit.orders.cancelled == [(coid, "left from an earlier cycle")]
    assert kit.events.matching("a", "stopped", reason="cleanly")


@pytest.mark.parametrize("lands", [False, True])
async def test_the_wait_is_bounded_by_the_grace_whatever_the_lookups_find(unit_factory: UnitFactory,
                                                                          lands: bool) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    coid = await left_unknown(kit, lands_in_s=0.75 * grace_s(kit) if lands else math.inf)  # after both looks
    await kit.maker().cycle()

    assert kit.clock.now - start <= grace_s(kit) + PAST_THE_GRACE_S + 1e-9
    order = kit.orders.order(coid)
    assert order is not None
    # Found by the reconciliation at the grace's end: cancelled as left live at once; else never placed.
    assert order.state is (OrderState.CANCELED if lands else OrderState.REJECTED)
