"""B's decisions, fast: against a fake executor and fakeredis (`fixtures/fake_orders.py`).

The real chase loop (`execution/chase_loop.py`) and pricing (`chase.py`) run; only the executor below them is
fake. The same behaviour runs end to end against the simulator in `test_ab_*.py`.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from hedge_strategy.bus import FILLED, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.bus.resting import RestingOrder, publish_resting
from hedge_strategy.chase import slippage_limit
from hedge_strategy.exchange import (
    Purpose,
    Refusal,
    RefusalKind,
    Role,
    SendResult,
    SendStatus,
    Side,
    make_coid,
)
from hedge_strategy.execution import Intent, OrderKind, OrderSpec
from hedge_strategy.hedger import Hedger, hedge_coid
from tests.fixtures.fake_orders import BTC, UnitFactory, UnitKit

SIZE = Decimal("0.0002")


def a_bought(kit: UnitKit, trade_id: int) -> HedgeRequest:
    """A's buy fill of `SIZE`: B is asked to sell it."""
    return HedgeRequest.for_fills(
        pair=kit.config.pair, market="BTC", market_id=BTC.market_id, a_fill_side="buy", size=SIZE,
        a_client_order_index=make_coid(Role.A, Purpose.MAKER, 1), trade_ids=[trade_id],
        a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())


async def handle(kit: UnitKit, hedger: Hedger, *requests: HedgeRequest) -> dict[str, HedgeOutcome]:
    """A publishes `requests`, B reads them in one batch and handles it; the outcomes stored for them."""
    await kit.bus.ensure_group()
    for request in requests:
        await kit.peer.publish_request(request)
    deliveries = await kit.bus.read_requests(hedger.consumer, count=10, block_ms=None)
    await hedger.handle(deliveries)
    return await kit.peer.get_outcomes([r.request_id for r in requests])


async def test_two_waiting_requests_are_netted_into_one_order(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [2 * SIZE]
    first, second = a_bought(kit, 11), a_bought(kit, 12)
    outcomes = await handle(kit, kit.hedger(), first, second)

    (sent,) = kit.orders.sent
    assert (sent.kind, sent.side, sent.size) == (OrderKind.IOC, Side.SELL, 2 * SIZE)
    assert sent.coid == hedge_coid(first.request_id, 1)
    assert sent.request_id == f"{first.request_id},{second.request_id}"
    assert outcomes[first.request_id] == outcomes[second.request_id]  # one outcome answers both
    assert (outcomes[first.request_id].status, outcomes[first.request_id].filled_size) == (FILLED, 2 * SIZE)
    assert await kit.bus.pending_count() == 0


async def test_the_chase_widens_each_attempt_within_the_slippage_cap(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    kit.orders.ioc_fills = [Decimal(0), Decimal(0), Decimal(0), SIZE]  # the fourth IOC fills
    request = a_bought(kit, 21)
    outcome = (await handle(kit, kit.hedger(), request))[request.request_id]

    prices = [s.price for s in kit.orders.sent]
    touch = kit.orders.account.bids[0]  # B sells: from the best bid down
    assert prices[0] == touch
    assert all(later < earlier for earlier, later in itertools.pairwise(prices))
    assert len({b - a for a, b in itertools.pairwise(prices)}) == 1  # an equal step each time
    assert prices[1] < touch - BTC.tick  # wider than a tick: the slippage budget spread over the attempts
    assert [s.coid for s in kit.orders.sent] == [hedge_coid(request.request_id, k) for k in range(1, 5)]
    assert (outcome.status, outcome.attempts, outcome.filled_size) == (FILLED, 4, SIZE)


async def test_a_chase_that_never_fills_ends_at_the_cap_and_fails(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 31)
    outcome = (await handle(kit, kit.hedger(), request))[request.request_id]

    prices = [s.price for s in kit.orders.sent]
    cap = slippage_limit(Side.SELL, kit.orders.account.bids[0], Decimal(50), BTC.tick)
    assert len(prices) == 5 and min(prices) >= cap
    assert prices[-1] - cap < prices[0] - prices[1]  # the last attempt is within one step of the cap
    assert outcome.status == "failed" and outcome.attempts == 5
    assert outcome.reason is not None and outcome.reason.startswith("5 IOC attempts filled 0 of 0.0002")


async def test_a_final_refusal_stops_the_chase_one_worth_retrying_does_not(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    kit.orders.answers = [SendResult(SendStatus.REJECTED, 21130, "not enough margin", None,
                                     Refusal(RefusalKind.FINAL, "not enough margin"))]
    final = a_bought(kit, 41)
    outcome = (await handle(kit, kit.hedger(), final))[final.request_id]
    assert len(kit.orders.sent) == 1
    assert outcome.status == "failed" and outcome.reason is not None
    assert "21130" in outcome.reason and "retrying cannot fix it" in outcome.reason

    kit.orders.sent.clear()
    kit.orders.answers = [SendResult(SendStatus.REJECTED, 29500, "injected failure", None,
                                     Refusal(RefusalKind.UNKNOWN, "injected failure"))]
    kit.orders.ioc_fills = [SIZE]
    retried = a_bought(kit, 42)
    outcome = (await handle(kit, kit.hedger(), retried))[retried.request_id]
    assert len(kit.orders.sent) == 2  # refused, then the second attempt filled
    assert (outcome.status, outcome.attempts) == (FILLED, 2)


async def test_a_request_with_a_stored_outcome_is_only_acknowledged(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    request = a_bought(kit, 51)
    await kit.peer.publish_outcome(HedgeOutcome(
        pair=kit.config.pair, request_ids=(request.request_id,), status=FILLED, market="BTC", side="sell",
        requested_size=SIZE, filled_size=SIZE, avg_price=Decimal("94999"), attempts=1, reason=None,
        hedge_client_order_indexes=(hedge_coid(request.request_id, 1),), received_ts_ms=now_ms(),
        sent_ts_ms=now_ms(), filled_ts_ms=now_ms(), latency_ms=1.0))

    await handle(kit, kit.hedger(), request)
    assert kit.orders.sent == []
    assert await kit.bus.pending_count() == 0


async def test_a_request_hedged_in_the_journal_is_resumed_not_sent_again(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b")
    request = a_bought(kit, 61)
    # A previous B sent attempt 1, which filled, and died before publishing the outcome.
    coid = hedge_coid(request.request_id, 1)
    kit.orders.ioc_fills = [SIZE]
    await kit.orders.submit(OrderSpec(coid, Intent.HEDGE, BTC, Side.SELL, SIZE, Decimal("94999.0"),
                                      OrderKind.IOC, request_id=request.request_id, attempt=1))
    await kit.orders.finish(coid, 1)
    kit.orders.sent.clear()

    outcome = (await handle(kit, kit.hedger(), request))[request.request_id]
    assert kit.orders.sent == []
    assert (outcome.status, outcome.filled_size) == (FILLED, SIZE)
    assert outcome.hedge_client_order_indexes == (coid,)
    assert kit.events.matching("b", "hedge_resumed", count=1)


async def test_the_first_attempt_takes_the_markets_recent_move_as_room(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    kit.orders.account.move_ticks = 30  # the mid moved up to 30 ticks over one speed bump lately
    kit.orders.ioc_fills = [Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0)]
    request = a_bought(kit, 71)
    await handle(kit, kit.hedger(), request)

    prices = [s.price for s in kit.orders.sent]
    touch = kit.orders.account.bids[0]  # B sells: from the best bid down
    cap = slippage_limit(Side.SELL, touch, Decimal(50), BTC.tick)
    assert prices[0] == touch - 30 * BTC.tick
    assert len({b - a for a, b in itertools.pairwise(prices)}) == 1  # then an equal step each time
    assert min(prices) >= cap and prices[-1] - cap < prices[0] - prices[1]  # the last one ends at the cap


async def test_a_resumed_chase_stays_within_the_cap_of_the_touch_it_started_from(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 81)
    touch = kit.orders.account.bids[0]
    # A previous B sent attempt 1 with 30 ticks of room; it filled nothing, and B died.
    first = OrderSpec(hedge_coid(request.request_id, 1), Intent.HEDGE, BTC, Side.SELL, SIZE,
                      touch - 30 * BTC.tick, OrderKind.IOC, request_id=request.request_id, attempt=1)
    kit.orders.ioc_fills = [Decimal(0)]
    await kit.orders.submit(first)
    await kit.orders.finish(first.coid, 1)
    kit.orders.sent.clear()
    kit.orders.account.move_ticks = 500  # a resumed chase takes no room, whatever the market did

    kit.orders.ioc_fills = [Decimal(0), Decimal(0), Decimal(0), Decimal(0)]
    await handle(kit, kit.hedger(), request)
    prices = [s.price for s in kit.orders.sent]
    assert [s.attempt for s in kit.orders.sent] == [2, 3, 4, 5]
    assert min(prices) >= slippage_limit(Side.SELL, touch, Decimal(50), BTC.tick)


async def test_a_resumed_chase_counts_attempts_by_number_not_by_orders(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 91)
    # A previous B sent attempt 1 three times (two sends refused for the rate limit), then died.
    limited = SendResult(SendStatus.REJECTED, 23000, "rate limited", None,
                         Refusal(RefusalKind.TRANSPORT, "HTTP 429"))
    kit.orders.answers = [limited, limited]
    kit.orders.ioc_fills = [Decimal(0)]
    for resend in range(3):
        spec = OrderSpec(hedge_coid(request.request_id, 1, resend), Intent.HEDGE, BTC, Side.SELL, SIZE,
                         Decimal("94999.0"), OrderKind.IOC, request_id=request.request_id, attempt=1)
        if (await kit.orders.submit(spec)).status is SendStatus.ACCEPTED:
            await kit.orders.finish(spec.coid, 1)
    kit.orders.sent.clear()

    kit.orders.ioc_fills = [SIZE]
    outcome = (await handle(kit, kit.hedger(), request))[request.request_id]
    (resumed,) = kit.orders.sent
    assert (resumed.attempt, resumed.coid) == (2, hedge_coid(request.request_id, 2))  # not attempt 4
    assert (outcome.status, outcome.attempts) == (FILLED, 4)  # four orders sent in all


async def first_sell_price_with_a_resting(kit: UnitKit, resting: RestingOrder,
                                          request: HedgeRequest) -> Decimal:
    """B's first IOC (a sell, 30 ticks of room) while A's key names `resting`."""
    kit.orders.account.move_ticks = 30
    kit.orders.ioc_fills = [SIZE]
    await publish_resting(kit.peer, resting)
    await handle(kit, kit.hedger(), request)
    return kit.orders.sent[0].price


async def test_a_key_naming_the_order_this_hedge_fills_completely_leaves_the_room(
        unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 94)
    touch = kit.orders.account.bids[0]
    # A's one-lot bid filled (this request) 10 ticks under the touch; A has not cleared its key yet.
    stale = RestingOrder(request.a_client_order_index, "buy", touch - 10 * BTC.tick, SIZE)
    assert await first_sell_price_with_a_resting(kit, stale, request) == touch - 30 * BTC.tick


async def test_a_partly_filled_order_of_a_still_bounds_the_first_attempt(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 92)
    touch = kit.orders.account.bids[0]
    # A's bid of two lots filled one (this request): its remainder may rest while A cancels it.
    partly = RestingOrder(request.a_client_order_index, "buy", touch - 10 * BTC.tick, 2 * SIZE)
    assert await first_sell_price_with_a_resting(kit, partly, request) == touch - 9 * BTC.tick


async def test_a_key_without_a_size_still_bounds_the_first_attempt(unit_factory: UnitFactory) -> None:
    kit = await unit_factory("b", retry_times=5, max_slippage_bps=50)
    request = a_bought(kit, 93)
    touch = kit.orders.account.bids[0]
    older_a = RestingOrder(request.a_client_order_index, "buy", touch - 10 * BTC.tick)  # no size published
    assert await first_sell_price_with_a_resting(kit, older_a, request) == touch - 9 * BTC.tick


async def test_the_chase_names_the_fills_it_hedges_so_a_book_behind_them_is_read_without_them(
        unit_factory: UnitFactory) -> None:
    """The venue's book may not show A's fill yet (`LocalBook.touch_after`): each book read of the chase
    passes the fills of its requests (A bought at 95000: the bids consumed); a residual names none."""
    kit = await unit_factory("b")
    kit.orders.ioc_fills = [2 * SIZE]
    first, second = a_bought(kit, 51), a_bought(kit, 52)
    await handle(kit, kit.hedger(), first, second)

    (read,) = kit.orders.account.traded_given
    assert [(t.price, t.size, t.ts_ms, t.maker_is_bid) for t in read] == [
        (Decimal("95000"), SIZE, first.fill_ts_ms, True), (Decimal("95000"), SIZE, second.fill_ts_ms, True)]
