"""The price A would place its maker order at now (`LighterAccount.live_maker_price`), from the stream's book
without A's own resting order: the reference of a re-price (`maker_reprice`). A stream stand-in holding one
book; no network."""

from __future__ import annotations

from decimal import Decimal as D

from hedge_strategy.exchange import LighterAccount, MarketInfo, Side
from hedge_strategy.exchange.book import BookSeq, LocalBook
from hedge_strategy.exchange.movement import MidMovement

BTC = MarketInfo("BTC", 1, size_decimals=5, price_decimals=1, min_base_amount=D("0.0002"),
                 min_quote_amount=D("10"))
A_ORDER = (D("95000.0"), D("0.0002"))  # A's bid, alone at its level: the market moved down through it


class OneBook:
    def __init__(self, book: LocalBook) -> None:
        self.book = book

    def fresh_book(self, market_id: int, heard_within_s: float | None = None) -> LocalBook | None:
        return self.book if market_id == self.book.market_id else None


def account_with(bids: list[tuple[D, D]], asks: list[tuple[D, D]], move_ticks: int | None) -> LighterAccount:
    account = LighterAccount(url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/stream", account_index=101,
                             api_key_index=3, api_secret="0" * 80, tier="standard", clock=lambda: 1.0)
    book = LocalBook(BTC.market_id)
    book.apply_snapshot(BookSeq(1, 1, 0), bids, asks, 0)
    account._stream = OneBook(book)  # type: ignore[assignment]
    if move_ticks is not None:  # the mid moved this far over one maker bump, once, just now
        movement = MidMovement(BTC.tick, 200)
        movement.update(800.0, D("95000.0"), D("95000.2"))
        movement.update(1000.0, D("95000.0") + move_ticks * BTC.tick, D("95000.2") + move_ticks * BTC.tick)
        account._maker_movements = {BTC.market_id: movement}
    return account


def test_without_its_own_order_the_price_is_where_a_new_order_would_go() -> None:
    bids = [A_ORDER, (D("94980.0"), D("0.5"))]
    account = account_with(bids, [(D("95100.0"), D("0.5"))], move_ticks=None)  # no move: no room needed
    assert account.live_maker_price(BTC, Side.BUY, 1, 0.95) == D("95000.0")  # A's own order is depth 1
    assert account.live_maker_price(BTC, Side.BUY, 1, 0.95, without=A_ORDER) == D("94980.0")
    shared = account_with([(D("95000.0"), D("0.5002"))], [(D("95100.0"), D("0.5"))], move_ticks=None)
    assert shared.live_maker_price(BTC, Side.BUY, 1, 0.95, without=A_ORDER) == D("95000.0")  # others there


def test_on_standard_it_is_kept_clear_of_the_opposite_touch_as_a_new_order_is() -> None:
    ask = D("95001.0")
    account = account_with([A_ORDER, (D("94999.0"), D("0.5"))], [(ask, D("0.5"))], move_ticks=30)
    # Depth 1 without A's order is 94999.0, but the ask could fall 30 ticks in the bump: 31 ticks below it.
    assert account.live_maker_price(BTC, Side.BUY, 1, 0.95, without=A_ORDER) == ask - 31 * BTC.tick
