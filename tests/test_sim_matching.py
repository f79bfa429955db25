"""Simulator matching: priority, partial fills, order-type outcomes, self-trade, margin, events, speed."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from lighter_sim.events import BookChanged, OrderChanged, PositionChanged, TradeHappened, TxSettled
from tests.test_sim_engine import BTC, ETH, A, B, C, Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_price_then_time_priority(h: Harness) -> None:
    early = h.order(A, 1, "0.0002", "95000", "buy")
    late = h.order(C, 2, "0.0002", "95000", "buy")
    better = h.order(C, 3, "0.0002", "95000.1", "buy")
    h.order(B, 4, "0.0004", "94000", "sell", tif="ioc")
    assert (better.status, early.status, late.status) == ("filled", "filled", "open")
    trades = h.engine.recent_trades_json(BTC, 10)["trades"]
    assert [t["price"] for t in reversed(trades)] == ["95000.1", "95000.0"]  # each at the maker's price


def test_partial_fills_and_ioc_remainder(h: Harness) -> None:
    maker = h.order(A, 1, "0.0010", "95000", "sell")
    taker = h.order(B, 2, "0.0004", "95000", "buy", tif="ioc")
    assert (maker.status, maker.remaining, maker.filled) == ("open", 60, 40)
    assert taker.status == "filled"
    body = h.engine.active_orders_json(A, BTC)["orders"][0]
    assert (body["remaining_base_amount"], body["filled_base_amount"], body["filled_quote_amount"]) == (
        "0.00060",
        "0.00040",
        "38.000000",
    )
    ioc = h.order(C, 3, "0.0010", "95000", "buy", tif="ioc")
    assert (ioc.status, ioc.filled, maker.status) == ("canceled", 60, "filled")
    assert h.engine.book_snapshot(BTC)["asks"] == []


def test_gtt_remainder_rests_after_crossing(h: Harness) -> None:
    h.order(A, 1, "0.0002", "95000", "sell")
    bid = h.order(B, 2, "0.0006", "95000", "buy")
    assert (bid.status, bid.filled, bid.remaining) == ("open", 20, 40)
    assert h.engine.book_snapshot(BTC)["bids"] == [{"price": "95000.0", "size": "0.00040"}]


def test_post_only_that_would_cross_is_canceled_without_fill(h: Harness) -> None:
    ask = h.order(A, 1, "0.0002", "95000", "sell")
    crossing = h.order(B, 2, "0.0002", "95000", "buy", tif="post")
    resting = h.order(B, 3, "0.0002", "94999.9", "buy", tif="post")
    assert (crossing.status, crossing.filled, ask.status) == ("canceled-post-only", 0, "open")
    assert resting.status == "open"


def test_reduce_only_outcomes(h: Harness) -> None:
    no_position = h.order(A, 1, "0.0002", "95000", "sell", tif="ioc", reduce_only=True)
    assert no_position.status == "canceled-reduce-only"
    h.order(B, 2, "0.0004", "95000", "sell")
    h.order(A, 3, "0.0004", "95000", "buy", tif="ioc")  # A long 0.0004
    growing = h.order(A, 4, "0.0002", "90000", "buy", reduce_only=True)
    assert growing.status == "canceled-reduce-only"
    h.order(C, 5, "0.0010", "95000", "buy")
    clipped = h.order(A, 6, "0.0010", "95000", "sell", tif="ioc", reduce_only=True)
    assert (clipped.status, clipped.filled, clipped.initial_size) == ("filled", 40, 40)
    assert (h.position(A)["sign"], h.position(A)["position"]) == (1, "0.00000")  # flat: sign 1, as captured


def test_resting_reduce_only_is_canceled_once_the_position_is_gone(h: Harness) -> None:
    h.order(B, 1, "0.0004", "95000", "sell")
    h.order(A, 2, "0.0004", "95000", "buy", tif="ioc")  # A long 0.0004
    close = h.order(A, 3, "0.0004", "96000", "sell", reduce_only=True)
    h.order(B, 4, "0.0004", "94000", "buy")
    h.order(A, 5, "0.0004", "94000", "sell", tif="ioc")  # closed some other way
    h.order(C, 6, "0.0004", "96000", "buy", tif="ioc")
    assert close.status == "canceled-reduce-only" and close.filled == 0
    assert (h.position(A)["sign"], h.position(A)["position"]) == (1, "0.00000")  # flat: sign 1, as captured


def test_market_order_outcomes(h: Harness) -> None:
    h.order(A, 1, "0.0002", "95000", "sell")
    h.order(A, 2, "0.0002", "95100", "sell")
    h.order(A, 3, "0.0002", "95500", "sell")
    capped = h.order(B, 4, "0.0010", "95200", "buy", market_order=True)
    assert (capped.status, capped.filled) == ("canceled-too-much-slippage", 40)
    drained = h.order(B, 5, "0.0010", "99000", "buy", market_order=True)
    assert (drained.status, drained.filled) == ("canceled-not-enough-liquidity", 20)
    h.order(A, 6, "0.0002", "95000", "sell")
    full = h.order(B, 7, "0.0002", "96000", "buy", market_order=True)
    assert full.status == "filled"
    assert h.engine.orders_by_client_index_json(B, [4])["orders"][0]["type"] == "market"


def test_self_trade_expires_the_resting_maker_and_continues(h: Harness) -> None:
    own = h.order(A, 1, "0.0002", "95000", "sell")
    other = h.order(B, 2, "0.0002", "95000", "sell")
    taker = h.order(A, 3, "0.0002", "95000", "buy", tif="ioc")
    assert own.status == "canceled-self-trade"
    assert (other.status, taker.status) == ("filled", "filled")


def test_margin_not_allowed_when_initial_margin_exceeds_equity() -> None:
    h = Harness(collateral={A: "100"})  # 5 % of 95000 * 0.03 = 142.5 > 100
    h.order(B, 1, "0.0300", "95000", "sell")
    too_big = h.order(A, 2, "0.0300", "95000", "buy", tif="ioc")
    assert (too_big.status, too_big.filled) == ("canceled-margin-not-allowed", 0)
    fits = h.order(A, 3, "0.0200", "95000", "buy", tif="ioc")  # 95 <= 100
    assert fits.status == "filled"
    # After an adverse move equity (100 - 20 - fees) is below the position's margin (0.02 * 94000 * 5 % = 94):
    # growing is refused, reducing is still allowed.
    h.cancel(B, 1)
    h.engine.set_mid(BTC, Decimal("94000"))
    h.order(B, 4, "0.0002", "94000", "sell")
    assert h.order(A, 5, "0.0002", "94000", "buy", tif="ioc").status == "canceled-margin-not-allowed"
    h.order(C, 6, "0.0100", "93900", "buy")
    assert h.order(A, 7, "0.0100", "93900", "sell", tif="ioc").status == "filled"


def test_events_of_a_crossing_order(h: Harness) -> None:
    h.order(A, 1, "0.0002", "95000", "sell")
    h.order(A, 2, "0.0002", "95100", "sell")
    h.order(A, 3, "0.0100", "3000", "sell", market=ETH)
    offsets = {m: h.engine.book_snapshot(m)["offset"] for m in (BTC, ETH)}
    first = h.take_events()
    # resting creation is published, with the position's new open order count (captured: testnet positions
    # lines 3, 4, 6), then the sequencer's verdict on its transaction (tx_history.py)
    assert [type(e) for e in first] == [OrderChanged, PositionChanged, BookChanged, TxSettled] * 3
    h.order(B, 4, "0.0003", "95100", "buy", tif="ioc")
    events = h.take_events()
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "OrderChanged",
        "TradeHappened",
        "PositionChanged",
        "PositionChanged",  # maker 1 filled
        "OrderChanged",
        "TradeHappened",
        "PositionChanged",
        "PositionChanged",  # maker 2 partly filled
        "OrderChanged",  # the taker's final state
        "BookChanged",  # one delta for the whole transaction
        "TxSettled",  # the transaction executed
    ]
    book = events[-2]
    assert isinstance(book, BookChanged)
    assert (book.market_id, book.offset) == (BTC, offsets[BTC] + 1)
    assert book.asks == [{"price": "95000.0", "size": "0.00000"}, {"price": "95100.0", "size": "0.00010"}]
    assert book.bids == []
    orders = [e for e in events if isinstance(e, OrderChanged)]
    assert [(o.account_index, o.order["status"]) for o in orders] == [
        (A, "filled"),
        (A, "open"),
        (B, "filled"),
    ]
    trade = next(e for e in events if isinstance(e, TradeHappened))
    assert (trade.maker_account, trade.taker_account, trade.trade["is_maker_ask"]) == (A, B, True)
    positions = [e for e in events if isinstance(e, PositionChanged)]
    assert positions[-1].account_index == B and positions[-1].position["position"] == "0.00030"
    assert h.engine.book_snapshot(ETH)["offset"] == offsets[ETH]  # untouched market: no delta


def test_book_offsets_grow_by_one_per_delta(h: Harness) -> None:
    for coid in range(1, 6):
        h.order(A, coid, "0.0002", str(94000 + coid), "buy")
    h.cancel(A, 3)
    deltas = [e for e in h.take_events() if isinstance(e, BookChanged) and e.market_id == BTC]
    assert [d.offset for d in deltas] == list(range(deltas[0].offset, deltas[0].offset + 6))
    assert deltas[-1].bids == [{"price": "94003.0", "size": "0.00000"}]
    snapshot = h.engine.book_snapshot(BTC)
    assert snapshot["offset"] == deltas[-1].offset
    assert [lv["price"] for lv in snapshot["bids"]] == ["94005.0", "94004.0", "94002.0", "94001.0"]


def test_rejected_and_noop_txs_publish_nothing(h: Harness) -> None:
    post = h.order(A, 1, "0.0002", "95000", "sell")
    h.take_events()
    cancel = h.accept(15, A, MarketIndex=BTC, Index=1)
    h.cancel(A, 1)
    h.take_events()
    h.engine.execute(cancel)  # the order is already gone: nothing changes, the transaction is settled
    (settled,) = h.take_events()
    assert post.status == "canceled" and isinstance(settled, TxSettled)
    assert settled.tx["type"] == 15 and json.loads(settled.tx["event_info"])["ae"] == ""


def test_a_change_of_open_orders_sends_the_position_with_its_new_count(h: Harness) -> None:
    # Captured (ws/account_all_positions/hftbacktest_testnet-516-2026-07-30.jsonl lines 3, 4, 6): after an
    # order rests or is canceled, `update/account_all_positions` with the new open_order_count.
    def counts() -> list[tuple[int, int]]:
        return [(e.account_index, e.position["open_order_count"]) for e in h.take_events()
                if isinstance(e, PositionChanged)]

    h.order(A, 1, "0.0002", "94000", "buy")
    assert counts() == [(A, 1)]
    h.send(17, A, MarketIndex=BTC, Index=1, BaseAmount=20, Price=939000, TriggerPrice=0)
    assert counts() == []  # re-priced: still one open order [inferred: no update]
    h.cancel(A, 1)
    assert counts() == [(A, 0)]
    h.order(A, 2, "0.0100", "3000", "sell", market=ETH, tif="ioc")  # an IOC that never rests
    assert counts() == []
