"""A re-prices its resting order in place (one ModifyOrder) when the book moved away from it or through it
(`maker_reprice`), and B's wash guard is bounded by both prices while the modify is in flight. A fake
executor, A's Redis and a clock the test moves (`fixtures/fake_orders.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.bus.resting import RestingOrder, read_resting
from hedge_strategy.exchange import MarketInfo, Purpose, Role, Side
from hedge_strategy.exchange.throttle import modify_interval_s
from hedge_strategy.execution import Intent, OrderKind, OrderSpec, Submitted
from hedge_strategy.maker import Maker
from hedge_strategy.maker_reprice import MODIFY_UNCONFIRMED_S, Repricer, bounding_price, moved_reason
from hedge_strategy.wash_guard import limit_bound
from tests.fixtures.fake_orders import BTC, UnitFactory, UnitKit, a_with_b_up, show_modify, unit_config

WAIT_S = 5.0
TICK = BTC.tick
COID_PARTS = (Role.A, Purpose.MAKER, "coid")


def test_the_price_a_would_place_now_decides_a_modify_behind_or_through(tmp_path: Path) -> None:
    cfg = unit_config(tmp_path, depth=1, max_price_drift_ticks=300, max_through_ticks=120).strategy
    price = Decimal("95000.0")
    # A buy: A's price now above its price is behind (the touch moved away), below it the book moved through.
    assert moved_reason(Side.BUY, price, price + 300 * TICK, TICK, cfg) is None
    assert "301 ticks ahead of it" in (moved_reason(Side.BUY, price, price + 301 * TICK, TICK, cfg) or "")
    assert moved_reason(Side.BUY, price, price - 120 * TICK, TICK, cfg) is None
    through = moved_reason(Side.BUY, price, price - 121 * TICK, TICK, cfg) or ""
    assert through.startswith("the book moved 121 ticks through its price")
    # A sell: the other way round.
    assert "121 ticks through" in (moved_reason(Side.SELL, price, price + 121 * TICK, TICK, cfg) or "")
    assert "301 ticks ahead" in (moved_reason(Side.SELL, price, price - 301 * TICK, TICK, cfg) or "")


def test_b_is_bounded_by_the_more_aggressive_of_the_old_and_the_new_price() -> None:
    low, high = Decimal("94990.0"), Decimal("95000.0")
    assert bounding_price(Side.BUY, low, high) == bounding_price(Side.BUY, high, low) == high  # a bid
    assert bounding_price(Side.SELL, low, high) == bounding_price(Side.SELL, high, low) == low  # an ask


class Published:
    """Every entry A publishes for B's wash guard, in order, with an event for the test to wait on."""

    def __init__(self, maker: Maker) -> None:
        self.entries: list[RestingOrder] = []
        self._changed = asyncio.Event()
        publish = maker._publish_entry

        async def recorded(resting: RestingOrder) -> None:
            await publish(resting)
            self.entries.append(resting)
            self._changed.set()

        maker._publish_entry = recorded  # type: ignore[method-assign]

    async def until(self, condition: Callable[[list[RestingOrder]], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition(self.entries):
                self._changed.clear()
                await self._changed.wait()


async def resting_a(unit_factory: UnitFactory, **strategy: object) -> tuple[UnitKit, Maker, Published,
                                                                             asyncio.Task[None], int]:
    """A's order resting at depth 2 (the unit config's 94998.0), its waits held (no time passes)."""
    kit = await a_with_b_up(unit_factory, **strategy)
    kit.orders.hold_waits = True
    maker = kit.maker()
    published = Published(maker)
    maker.book.start()
    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    return kit, maker, published, cycle, placed.coid


async def stop(kit: UnitKit, maker: Maker, cycle: asyncio.Task[None]) -> None:
    maker.rt.stop.set()  # the order is cancelled "shutting down" and the cycle ends
    kit.orders.changes.pulse()
    await asyncio.wait_for(cycle, WAIT_S)
    await maker.book.stop()


async def test_an_order_the_book_moved_through_is_modified_to_a_s_price_now(
        unit_factory: UnitFactory) -> None:
    kit, maker, published, cycle, coid = await resting_a(unit_factory)
    venue, placed = kit.orders.account, Decimal("94998.0")
    limit = kit.config.strategy.max_through_ticks
    # First within the limit (A's price now, depth 2, `limit` ticks below its own): it stays.
    venue.move_book([placed + TICK, placed - limit * TICK, placed - (limit + 1) * TICK], venue.asks)
    # Then beyond it: the next taker would fill it at a price the market has left; modified to depth 2.
    target = placed - (limit + 20) * TICK
    venue.move_book([placed - 50 * TICK, target, target - TICK], venue.asks)
    await kit.orders.changes.until(lambda: kit.orders.modified, WAIT_S)

    ((modified, price, why),) = kit.orders.modified
    assert (modified, price) == (coid, target)
    assert why.startswith(f"the book moved {limit + 20} ticks through its price"), why
    (sent,) = kit.events.matching("a", "order_placed")  # one order, re-priced in place
    assert kit.orders.cancelled == [] and kit.orders.order(coid).price == target  # type: ignore[union-attr]
    await published.until(lambda entries: entries[-1].price == target)  # B is bounded by the new price
    assert await read_resting(kit.bus) == RestingOrder(coid, "buy", target, sent.size)
    await stop(kit, maker, cycle)
    assert kit.orders.cancelled == [(coid, "shutting down")]


async def test_an_order_behind_by_more_than_the_drift_is_modified(unit_factory: UnitFactory) -> None:
    kit, maker, _, cycle, coid = await resting_a(unit_factory, max_price_drift_ticks=5)
    venue, placed = kit.orders.account, Decimal("94998.0")
    venue.move_book([placed + 7 * TICK, placed + 5 * TICK], venue.asks)  # A's price now 5 ticks up: stays
    venue.move_book([placed + 8 * TICK, placed + 6 * TICK], venue.asks)  # 6: beyond the drift
    await kit.orders.changes.until(lambda: kit.orders.modified, WAIT_S)

    ((_, price, why),) = kit.orders.modified
    assert price == placed + 6 * TICK and why == f"A's price now is {price}, 6 ticks ahead of it"
    await stop(kit, maker, cycle)
    assert [c for c, _ in kit.orders.cancelled] == [coid]  # only the shutdown's cancel


@pytest.mark.parametrize("move, refused", [("through", False), ("behind", False), ("behind", True)])
async def test_while_a_modify_is_in_flight_b_is_bounded_by_both_prices(
        unit_factory: UnitFactory, move: str, refused: bool) -> None:
    kit, maker, published, cycle, coid = await resting_a(unit_factory, max_price_drift_ticks=5,
                                                         max_through_ticks=5)
    kit.orders.hold_modifies = True  # in flight until the test has the exchange show it, or refuse it
    venue, placed = kit.orders.account, Decimal("94998.0")
    target = placed - 10 * TICK if move == "through" else placed + 10 * TICK
    venue.move_book([target + TICK, target], venue.asks)
    await kit.orders.changes.until(lambda: kit.orders.modified, WAIT_S)

    # Published before the modify was sent: the more aggressive of the two (a bid: the higher), and no size:
    # B keeps the bound whatever fills its hedge covers (a modify that meets a fill A has not seen gives the
    # remainder the size it was sent with, so the order may outlast the size A published).
    assert [e.price for e in published.entries] == [placed, max(placed, target)]
    in_flight = await read_resting(kit.bus)
    assert in_flight is not None and (in_flight.price, in_flight.size) == (max(placed, target), None)
    size = kit.orders.order(coid).size  # type: ignore[union-attr]
    assert limit_bound(Side.SELL, in_flight, TICK, {coid: size}) == max(placed, target) + TICK
    show_modify(kit.orders, coid, refused=refused)
    now = placed if refused else target  # where the exchange shows the order
    await published.until(lambda entries: (entries[-1].price, entries[-1].size) == (now, size))
    assert await read_resting(kit.bus) == RestingOrder(coid, "buy", now, size)
    await stop(kit, maker, cycle)


async def test_a_modify_neither_shown_nor_refused_is_cancelled_after_its_bound(
        unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory, max_price_drift_ticks=5)
    kit.orders.hold_modifies = True
    venue = kit.orders.account
    submit = kit.orders.submit

    async def placed_then_moved(spec: OrderSpec) -> Submitted:
        sent = await submit(spec)
        venue.move_book([bid + 10 * TICK for bid in venue.bids], venue.asks)  # the touch moves away at once
        return sent

    kit.orders.submit = placed_then_moved  # type: ignore[method-assign]
    await asyncio.wait_for(kit.maker().cycle(), WAIT_S)  # the fake's waits pass the test's clock at once

    ((coid, price, _),) = kit.orders.modified
    assert kit.orders.cancelled == [
        (coid, f"its modify to {price} is neither shown nor refused after {MODIFY_UNCONFIRMED_S:g} s")]


async def test_without_a_book_no_modify_is_sent(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory, max_price_drift_ticks=5)
    venue = kit.orders.account
    priced = venue.live_maker_price

    def no_book_once_resting(market: MarketInfo, side: Side, depth: int, share: float,
                             without: tuple[Decimal, Decimal] | None = None) -> Decimal | None:
        if without is not None:  # A's order rests: the book is stale from now on
            return None
        venue.bids = [bid + 10 * TICK for bid in venue.bids]  # priced, then the book moves
        return priced(market, side, depth, share)

    venue.live_maker_price = no_book_once_resting  # type: ignore[method-assign]
    await asyncio.wait_for(kit.maker().cycle(), WAIT_S)

    (sent,) = kit.orders.sent
    assert kit.orders.modified == []
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")]  # watched to its timeout as before


async def test_a_partly_filled_order_is_cancelled_not_modified(unit_factory: UnitFactory) -> None:
    kit, maker, _, cycle, coid = await resting_a(unit_factory, max_price_drift_ticks=5)
    order = kit.orders.order(coid)
    assert order is not None
    order.filled_size = order.size / 2  # a fill the test gives without waking the loop
    venue = kit.orders.account
    venue.move_book([bid + 10 * TICK for bid in venue.bids], venue.asks)
    await asyncio.wait_for(cycle, WAIT_S)
    await maker.book.stop()
    assert kit.orders.modified == []
    assert kit.orders.cancelled == [(coid, f"partly filled ({order.filled_size} of {order.size}): the "
                                           "remainder is cancelled")]


async def test_a_fill_while_the_widened_entry_is_published_sends_no_modify(unit_factory: UnitFactory) -> None:
    # The fill's request may name the order at its old price (published before the widened entry landed):
    # the remainder must stay there, so the modify is not sent and the remainder is cancelled.
    kit = await a_with_b_up(unit_factory, max_price_drift_ticks=5)
    kit.orders.hold_waits = True
    maker = kit.maker()
    publish = maker._publish_entry

    async def filled_while_widened(resting: RestingOrder) -> None:
        await publish(resting)
        order = kit.orders.order(resting.client_order_index)
        if order is not None and resting.price != order.price:  # the widened entry: a fill meanwhile
            order.filled_size = order.size / 2

    maker._publish_entry = filled_while_widened  # type: ignore[method-assign]
    maker.book.start()
    cycle = asyncio.create_task(maker.cycle())
    (placed,) = await kit.events.wait("a", "order_placed", timeout_s=WAIT_S)
    venue = kit.orders.account
    venue.move_book([bid + 10 * TICK for bid in venue.bids], venue.asks)
    await asyncio.wait_for(cycle, WAIT_S)
    await maker.book.stop()
    order = kit.orders.order(placed.coid)
    assert order is not None and kit.orders.modified == [] and order.price == Decimal("94998.0")
    assert kit.orders.cancelled == [(placed.coid, f"partly filled ({order.filled_size} of {order.size}): "
                                                  "the remainder is cancelled")]


def test_modifies_are_held_to_a_share_of_the_tiers_budget() -> None:
    # Standard's 60 requests a minute: a quarter for modifies (one every 4 s), half that on a shared budget;
    # premium's weight leaves room for one every 0.06 s.
    assert modify_interval_s("standard") == 4.0 and modify_interval_s("standard", shared=True) == 8.0
    assert modify_interval_s("premium") == pytest.approx(0.06)


async def test_two_modify_attempts_are_spaced_even_when_the_first_was_given_up(
        unit_factory: UnitFactory) -> None:
    # A book trending faster than modifies show (or one that comes back before a modify leaves, giving it up
    # at departure after its token was spent) would otherwise re-price as fast as each modify settles.
    kit = await a_with_b_up(unit_factory, max_price_drift_ticks=5)
    maker = kit.maker()
    coid = kit.orders.next_coid(*COID_PARTS)
    placed = Decimal("94998.0")
    await kit.orders.submit(OrderSpec(coid, Intent.MAKER, BTC, Side.BUY, Decimal("0.0002"), placed,
                                      OrderKind.POST_ONLY))
    order = kit.orders.order(coid)
    assert order is not None
    reprice = Repricer(maker.rt, coid, maker._price_without, lambda: maker._resting_published,
                       maker._publish_entry, kit.clock)
    reprice.interval_s = modify_interval_s("standard")
    venue = kit.orders.account

    def trend(ticks: int) -> None:
        venue.bids = [bid + ticks * TICK for bid in venue.bids]

    trend(10)
    why = reprice.reason(order)
    assert why is not None
    venue_moves_back = venue.live_maker_price

    def back_at_departure(*args: object, **kwargs: object) -> Decimal | None:
        trend(-10)  # the book came back while the modify waited for its token: given up
        return venue_moves_back(*args, **kwargs)  # type: ignore[arg-type]

    venue.live_maker_price = back_at_departure  # type: ignore[method-assign]
    await reprice.modify(order, why)
    venue.live_maker_price = venue_moves_back  # type: ignore[method-assign]
    assert kit.orders.modified == []  # given up, its token spent
    trend(10)
    assert reprice.reason(order) is None  # not yet: 1 s retry and the 4 s spacing
    assert reprice.wake_in(order) == pytest.approx(4.0)
    kit.clock.now += 4.0
    why = reprice.reason(order)
    assert why is not None
    await reprice.modify(order, why)
    assert [price for _, price, _ in kit.orders.modified] == [placed + 10 * TICK]
    trend(10)  # shown at once; the book moves on
    assert reprice.reason(order) is None and reprice.wake_in(order) == pytest.approx(4.0)
    kit.clock.now += 4.0
    assert reprice.reason(order) is not None
