"""Transport trouble never uses up the chase: the real chase loop (`execution/chase_loop.py`) on the in-memory
executor (`fixtures/fake_orders.py`), with a settable clock and a sleep that only moves it.

An attempt is used up only when the venue answered about the order; a 429 past the sender's retries, a nonce
that could not be synced, or an order the exchange never had (an ambiguous send not found by its client order
index) is sent again at the same price step, re-read from the book, within the chase's transport budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange import (
    MarketInfo,
    Refusal,
    RefusalKind,
    SendResult,
    SendStatus,
    Side,
    TopOfBook,
    Traded,
)
from hedge_strategy.exchange.rest import VenueError
from hedge_strategy.execution import NEVER_REACHED, Intent, Journal, OrderState
from hedge_strategy.execution.chase_loop import (
    MAX_RESENDS,
    TRANSPORT_BACKOFF_CAP_S,
    Chase,
    ChasePlan,
    run_chase,
)
from hedge_strategy.hedger import attempt_numbers, hedge_coid
from tests.fixtures.common import FakeClock
from tests.fixtures.fake_orders import B_ACCOUNT, BTC, FakeOrders, FakeVenue

SIZE = Decimal("0.0002")
RATE_LIMITED = SendResult(SendStatus.REJECTED, 23000, "rate limited: too many requests; retry budget spent",
                          None, Refusal(RefusalKind.TRANSPORT, "HTTP 429"))
NO_ANSWER = SendResult(SendStatus.UNKNOWN, None, "timed out", "0xabc",
                       Refusal(RefusalKind.TRANSPORT, "timed out"))


class Sleeps:
    """The chase's backoff: records each wait and moves the clock by it (nothing really waits)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.now += seconds


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[FakeOrders]:
    journal = await Journal.open(tmp_path / "journal.sqlite", B_ACCOUNT)
    yield FakeOrders(FakeVenue(B_ACCOUNT), journal)
    await journal.close()


def plan(clock: FakeClock, sleeps: Sleeps, budget_s: float = 30.0) -> ChasePlan:
    return ChasePlan(market=BTC, side=Side.SELL, size=SIZE, intent=Intent.HEDGE,
                     coid_for=lambda attempt, resend: hedge_coid("r-1", attempt, resend), retry_times=5,
                     max_slippage_bps=Decimal(50), label="B hedge", target="r-1", request_ids=("r-1",),
                     transport_budget_s=budget_s, clock=clock, sleep=sleeps)


async def test_transport_refusals_then_a_fill_use_up_one_attempt(orders: FakeOrders) -> None:
    clock = FakeClock(tick=0.25)  # a quarter of a second from the start of each send to its end
    sleeps = Sleeps(clock)
    orders.answers = [RATE_LIMITED] * 6
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))

    assert done.failure is None and done.filled == SIZE and done.priced == 1
    assert [s.attempt for s in orders.sent] == [1] * 7  # one attempt, sent seven times
    assert [s.coid for s in orders.sent] == [hedge_coid("r-1", 1, r) for r in range(7)]
    assert len({s.price for s in orders.sent}) == 1  # the same step of a book that did not move
    assert [o.state for o in done.attempts] == [OrderState.REJECTED] * 6 + [OrderState.FILLED]
    assert len(sleeps.waits) == 6 and done.resends == 6
    assert done.transport_s == pytest.approx(sum(sleeps.waits) + 6 * 0.25)


async def test_a_resend_is_priced_from_the_current_book_at_the_same_step(orders: FakeOrders) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    venue = orders.account
    orders.answers = [RATE_LIMITED]
    orders.ioc_fills = [Decimal(0), SIZE]  # the re-send ends unfilled (attempt 1 used), attempt 2 fills

    async def market_moves(seconds: float) -> None:  # the bids fall 5.0 while B backs off
        await sleeps(seconds)
        venue.bids = [b - Decimal("5.0") for b in venue.bids]

    chase_plan = plan(clock, sleeps)
    done = await run_chase(orders, ChasePlan(**{**vars(chase_plan), "sleep": market_moves}), Chase(SIZE))
    first, resent, second = orders.sent
    assert (first.attempt, resent.attempt, second.attempt) == (1, 1, 2)
    assert first.price - resent.price == Decimal("5.0")  # same step (no room), from the new touch
    assert resent.price > second.price  # attempt 2 is wider by a step
    assert done.failure is None and done.priced == 2


async def test_an_ambiguous_send_found_by_its_client_order_index_is_not_sent_again(
        orders: FakeOrders) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    orders.answers = [NO_ANSWER]  # no answer: the order may exist; the executor looks it up and finds it
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))

    (sent,) = orders.sent
    assert orders.finished == [sent.coid]  # settled by its client order index, before anything else
    assert done.failure is None and done.filled == SIZE and done.priced == 1
    assert sleeps.waits == [] and done.resends == 0


async def test_an_ambiguous_send_never_found_is_sent_again_without_using_the_attempt(
        orders: FakeOrders) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    orders.answers = [NO_ANSWER]
    orders.not_found = 1  # not found past the grace: REJECTED "never reached the exchange"
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))

    first, again = orders.sent
    assert (first.attempt, again.attempt) == (1, 1) and first.price == again.price
    assert again.coid == hedge_coid("r-1", 1, 1) != first.coid
    assert (done.attempts[0].state, done.attempts[0].reason) == (OrderState.REJECTED, NEVER_REACHED)
    assert orders.finished == [first.coid, again.coid]  # the re-send only after the first was settled
    assert done.failure is None and done.filled == SIZE and done.priced == 1 and done.resends == 1


async def test_transport_trouble_past_the_budget_stops_the_chase(orders: FakeOrders) -> None:
    clock = FakeClock(tick=1.0)  # a second per send
    sleeps = Sleeps(clock)
    orders.answers = [RATE_LIMITED] * 1000
    done = await run_chase(orders, plan(clock, sleeps, budget_s=10.0), Chase(SIZE))

    assert done.code == "transport" and done.failure is not None
    assert "transport trouble" in done.failure and "429" in done.failure
    # Each wait fits in what is left; the send after the last one may end past it (by one send's time). It
    # stops when the next (jittered) wait does not fit: what was left is below the longest wait.
    assert 10.0 - TRANSPORT_BACKOFF_CAP_S < done.transport_s <= 10.0 + 1.0
    assert done.priced == 0  # no attempt used: the venue never answered about any order
    assert 3 <= len(orders.sent) <= 10 and all(s.attempt == 1 for s in orders.sent)


async def test_a_zero_budget_stops_at_the_first_transport_refusal(orders: FakeOrders) -> None:
    clock = FakeClock()
    orders.answers = [RATE_LIMITED]
    done = await run_chase(orders, plan(clock, Sleeps(clock), budget_s=0.0), Chase(SIZE))
    assert len(orders.sent) == 1 and done.code == "transport"


async def test_the_venues_retry_after_is_the_backoff(orders: FakeOrders) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    orders.answers = [SendResult(**{**vars(RATE_LIMITED), "retry_after_s": 0.75})]
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))
    assert sleeps.waits == [0.75] and done.filled == SIZE


async def test_a_refusal_that_is_not_transport_still_uses_an_attempt(orders: FakeOrders) -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    orders.answers = [SendResult(SendStatus.REJECTED, 29500, "injected failure", None,
                                 Refusal(RefusalKind.UNKNOWN, "injected failure"))]
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))
    assert [s.attempt for s in orders.sent] == [1, 2] and sleeps.waits == [] and done.priced == 2


async def test_a_book_that_cannot_be_read_is_transport_trouble_not_an_error(orders: FakeOrders) -> None:
    """The stream's book stale and its REST read refused (issue 9's `http_429_burst`): nothing is sent, no
    attempt used, nothing raised; the attempt goes out once the book reads again."""
    clock = FakeClock(tick=0.5)  # each read takes half a second
    sleeps = Sleeps(clock)
    venue = orders.account
    readable = venue.top_of_book
    refusals = [VenueError("orderBookOrders", "too many requests", 429, 23000)] * 3

    async def top_of_book(market: MarketInfo, traded: Sequence[Traded] = ()) -> TopOfBook:
        if refusals:
            clock()  # the read's time
            raise refusals.pop()
        return await readable(market, traded)

    venue.top_of_book = top_of_book  # type: ignore[method-assign]
    orders.ioc_fills = [SIZE]
    done = await run_chase(orders, plan(clock, sleeps), Chase(SIZE))

    assert done.failure is None and done.filled == SIZE and done.priced == 1
    assert [s.attempt for s in orders.sent] == [1] and done.resends == 0  # one send, once the book read
    assert len(sleeps.waits) == 3 and done.transport_s >= sum(sleeps.waits)


async def test_a_book_unread_past_the_budget_stops_the_chase_as_transport(orders: FakeOrders) -> None:
    clock = FakeClock(tick=1.0)
    sleeps = Sleeps(clock)

    async def never(market: MarketInfo, traded: Sequence[Traded] = ()) -> TopOfBook:
        clock()
        raise VenueError("orderBookOrders", "too many requests", 429, 23000)

    orders.account.top_of_book = never  # type: ignore[method-assign]
    done = await run_chase(orders, plan(clock, sleeps, budget_s=5.0), Chase(SIZE))
    assert done.code == "transport" and "book could not be read" in (done.failure or "")
    assert orders.sent == [] and done.priced == 0


def test_resent_orders_have_indexes_of_their_own_that_a_resumed_b_can_number() -> None:
    assert hedge_coid("r-1", 2, 0) == hedge_coid("r-1", 2)  # first sends keep the indexes journals hold
    numbered = attempt_numbers("r-1", 5)
    assert len(numbered) == 5 * (MAX_RESENDS + 1)  # all distinct
    assert numbered[hedge_coid("r-1", 3, 7)] == (3, 7)
