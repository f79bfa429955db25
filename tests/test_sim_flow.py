"""Simulator market flow on a virtual clock: ladder, determinism, no crossing, bot orders filled by it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lighter_sim.book import Order
from lighter_sim.config import load_sim_config
from lighter_sim.engine import Engine
from lighter_sim.flow import MarketFlow
from lighter_sim.scheduler import Ticker
from tests.test_sim_engine import SIG

START_MS = 1_700_000_000_000
BOT = 101
SIM = load_sim_config(Path(__file__).parents[1] / "config.yaml")
FLOW = SIM.flow
DEFAULT_SEED = SIM.seed


class World:
    """Engine + flow from the shipped config.yaml, on a virtual clock."""

    def __init__(self, seed: int = DEFAULT_SEED, **flow_overrides: Any) -> None:
        self.now = START_MS
        specs = [market.spec() for market in SIM.markets]
        self.engine = Engine(specs, SIM.fees.by_tier(), clock_ms=lambda: self.now)
        self.engine.upsert_account(BOT, "premium", Decimal("100000"), {3: "ab" * 40})
        self.flow = MarketFlow(self.engine, replace(FLOW, **flow_overrides), seed)
        self.market = next(s.market_id for s in specs if s.symbol == "BTC")
        self._coid = 0

    def advance(self, ms: int, step_ms: int = 100) -> None:
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + step_ms)
            self.flow.advance_to(self.now)

    def bot_order(self, price: int, size: int, side: str = "buy", tif: int = 2) -> Order:
        self._coid += 1
        tx = {
            "AccountIndex": BOT,
            "ApiKeyIndex": 3,
            "ExpiredAt": self.now + 599_000,
            "Nonce": self.engine.next_nonce(BOT, 3),
            "MarketIndex": self.market,
            "ClientOrderIndex": self._coid,
            "BaseAmount": size,
            "Price": price,
            "IsAsk": int(side == "sell"),
            "Type": 0,
            "TimeInForce": tif,
            "ReduceOnly": 0,
            "TriggerPrice": 0,
            "OrderExpiry": self.now + 86_400_000,
            "Sig": SIG,
        }
        self.engine.execute(self.engine.accept_tx(14, json.dumps(tx), self.now * 1000))
        return self.engine.accounts[BOT].all_orders_by_client[self._coid]

    def best(self) -> tuple[int | None, int | None]:
        book = self.engine.books[self.market]
        return book.best_bid(), book.best_ask()


def test_initial_ladder_around_the_mid() -> None:
    world = World()
    spec = world.engine.specs[world.market]
    mid = world.engine.mids[world.market]
    snap = world.engine.book_snapshot(world.market)
    spacing, levels = FLOW.liquidity_spacing_ticks, FLOW.liquidity_levels
    assert [lv["price"] for lv in snap["bids"]] == [
        spec.fmt_price(mid - 1 - i * spacing) for i in range(levels)
    ]
    assert [lv["price"] for lv in snap["asks"]] == [
        spec.fmt_price(mid + 1 + i * spacing) for i in range(levels)
    ]
    assert {lv["size"] for lv in snap["asks"] + snap["bids"]} == {
        spec.fmt_size(FLOW.liquidity_size)
    }
    # The liquidity belongs to account 1, which is not a user account.
    owners = {o["owner_account_index"] for o in world.engine.order_book_orders_json(world.market, 5)["asks"]}
    assert owners == {1} and not world.engine.has_account(1)


def _trace(seed: int) -> tuple[list[tuple[Any, ...]], list[Decimal]]:
    world = World(seed)
    mids = []
    for _ in range(60):
        world.advance(1000)
        mids.append(world.engine.mid(world.market))
    trades = [
        (t["trade_id"], t["market_id"], t["price"], t["size"], t["timestamp"], t["is_maker_ask"])
        for t in world.engine.trades
    ]
    return trades, mids


def test_same_seed_same_flow_different_seed_different_flow() -> None:
    trades, mids = _trace(DEFAULT_SEED)
    assert len(trades) > 60  # about 1.5 takers per second per market, most of them trade
    assert _trace(DEFAULT_SEED) == (trades, mids)
    other_trades, other_mids = _trace(DEFAULT_SEED + 100)
    assert other_mids != mids and other_trades != trades


def test_takers_are_whole_lots_within_bounds_from_account_2() -> None:
    world = World()
    world.advance(30_000)
    for trade in world.engine.trades:
        spec = world.engine.specs[trade["market_id"]]
        lots = spec.size_to_int(Decimal(trade["size"])) / spec.min_base_int
        assert lots == int(lots) and 1 <= lots <= FLOW.taker_size_max_lots
        taker = trade["bid_account_id"] if trade["is_maker_ask"] else trade["ask_account_id"]
        assert taker == 2


def test_background_never_crosses_a_resting_order() -> None:
    world = World()
    spec = world.engine.specs[world.market]
    bid, ask = world.best()
    assert bid is not None and ask is not None
    world.bot_order(bid, spec.min_base_int * 50)  # big enough to stay around while the mid wanders
    world.bot_order(ask, spec.min_base_int * 50, side="sell")
    for _ in range(300):
        world.advance(100)
        bid, ask = world.best()
        assert bid is None or ask is None or bid < ask


def test_bot_post_only_at_best_bid_gets_filled_by_the_flow() -> None:
    """The maker bot's order joined at depth 1 must fill (often partially first) within a few seconds."""
    world = World()
    spec = world.engine.specs[world.market]
    bid, _ = world.best()
    assert bid is not None
    order = world.bot_order(bid, spec.min_base_int * 5)
    assert order.status == "open"
    waited = 0
    while order.filled == 0 and waited < 5_000:
        world.advance(100)
        waited += 100
    assert order.filled > 0, "no fill within 5 s"
    assert order.remaining > 0  # a taker of 1-3 lots takes a part of the 5 lots first


def test_bot_orders_fill_for_most_seeds() -> None:
    filled = partial = 0
    for seed in range(20):
        world = World(seed)
        bid, _ = world.best()
        assert bid is not None
        order = world.bot_order(bid, world.engine.specs[world.market].min_base_int * 5)
        for _ in range(100):  # 10 s
            world.advance(100)
            if order.filled:
                partial += order.remaining > 0
                break
        filled += order.filled > 0
    assert filled >= 16 and partial >= 8


def test_stale_quote_is_picked_off_after_the_mid_moves() -> None:
    world = World(taker_rate_per_s=20)
    spec = world.engine.specs[world.market]
    _, ask = world.best()
    assert ask is not None
    stale = world.bot_order(ask, spec.min_base_int, side="sell", tif=1)
    world.engine.set_mid(world.market, spec.price_from_int(ask) + Decimal(50))  # the market jumps up
    world.advance(1_000)
    assert stale.status == "filled"
    trade = world.engine.recent_trades_json(world.market, 100)["trades"]
    assert any(t["ask_account_id"] == BOT and t["price"] == spec.fmt_price(ask) for t in trade)


def test_reset_then_the_flow_requotes() -> None:
    world = World()
    world.advance(2_000)
    world.engine.reset()
    assert world.engine.book_snapshot(world.market)["bids"] == []
    world.advance(200)
    bid, ask = world.best()
    assert bid is not None and ask is not None and bid < ask


def test_disabled_flow_does_nothing() -> None:
    world = World(enabled=False)
    world.advance(5_000)
    assert world.best() == (None, None)
    assert list(world.engine.trades) == []


@pytest.mark.parametrize("gap_ms", [60_000, 3_600_000])
def test_long_gaps_are_processed_or_skipped_without_stalling(gap_ms: int) -> None:
    world = World()
    world.now += gap_ms
    world.flow.advance_to(world.now)  # one call: replays up to 5 minutes, skips longer gaps
    world.advance(1_000)
    bid, ask = world.best()
    assert bid is not None and ask is not None and bid < ask
    assert world.engine.trades[-1]["timestamp"] > START_MS + gap_ms - 60_000


def test_the_next_due_event_is_the_earliest_step_or_taker() -> None:
    world = World()
    due = world.flow.next_due_ms()
    assert due is not None and START_MS < due <= START_MS + FLOW.tick_interval_ms
    world.advance(int(due) + 1 - START_MS, step_ms=int(due) + 1 - START_MS)
    later = world.flow.next_due_ms()
    assert later is not None and later > due
    assert World(enabled=False).flow.next_due_ms() is None


async def test_the_ticker_also_steps_when_the_flow_has_an_event_due() -> None:
    """A taker due between two ticks runs at its own time, not at the next tick (interval: a minute here)."""
    due_ms = time.time() * 1000 + 20
    calls: list[int] = []
    second = asyncio.Event()

    def step(now_ms: int) -> None:
        calls.append(now_ms)
        if len(calls) == 2:
            second.set()

    ticker = Ticker(60_000, step, lambda: due_ms if len(calls) < 2 else None)
    ticker.start()
    try:
        await asyncio.wait_for(second.wait(), timeout=20)
    finally:
        await ticker.stop()
    assert calls[1] > due_ms  # its millisecond had begun: advance_to(now_ms) runs the event due at due_ms
