"""Integration: the adapter measures the market's move over one taker speed bump from its book stream."""

from __future__ import annotations

from decimal import Decimal

from hedge_strategy import chase
from hedge_strategy.exchange import Side, TopOfBook
from tests.fixtures.common import FakeClock
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import MIN_SIZE, Opener, maker_coid, next_event, open_account

__all__ = ["open_account"]

D = Decimal


async def test_book_changes_feed_the_move_over_one_taker_speed_bump(sim: SimProcess,
                                                                    open_account: Opener) -> None:
    clock = FakeClock(now=1000.0)  # seconds; the book changes are stamped with it
    watcher, events = await open_account(sim, books=("BTC",), tier="premium", clock=clock)
    maker, _ = await open_account(sim, account_index=102, books=())
    btc = watcher.market("BTC")
    assert watcher.taker_speed_bump_ms == 200
    assert watcher.taker_move_ticks(btc, chase.MOVE_SHARE) is None  # an empty book: no mid yet

    assert (await maker.place_post_only(btc, Side.BUY, MIN_SIZE, D("95000.0"), maker_coid(1))).accepted
    assert (await maker.place_post_only(btc, Side.SELL, MIN_SIZE, D("95010.0"), maker_coid(2))).accepted
    await next_event(events, TopOfBook, lambda t: (t.best_bid, t.best_ask) == (D("95000.0"), D("95010.0")))
    clock.now += 1.0  # a second later the ask comes down: the mid moves 95005.0 -> 95003.0, 20 ticks
    assert (await maker.place_post_only(btc, Side.SELL, MIN_SIZE, D("95006.0"), maker_coid(3))).accepted
    await next_event(events, TopOfBook, lambda t: t.best_ask == D("95006.0"))
    assert watcher.taker_move_ticks(btc, chase.MOVE_SHARE) == 20
    clock.now += 61.0  # a minute without a change: the market stood still
    assert watcher.taker_move_ticks(btc, chase.MOVE_SHARE) is None
    assert maker.taker_move_ticks(btc, chase.MOVE_SHARE) is None  # no book stream for it
