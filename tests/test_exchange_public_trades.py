"""The public trade feed (`trade/{market}`) parsed from the captured frames (tests/wire/ws/trade)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from hedge_strategy.exchange import PublicTrade, Side, parsing
from hedge_strategy.exchange.reads import resting_prices_of
from tests.fixtures.wire import CORPUS_DIR, read_file, records


def _frame(name: str, line: int = 1) -> dict[str, Any]:
    payload: dict[str, Any] = read_file(CORPUS_DIR / "ws" / "trade" / name)[line - 1].payload
    return copy.deepcopy(payload)


def test_every_captured_trade_frame_parses_every_trade() -> None:
    frames = [rec.payload for rec in records(kind="ws", name="trade")]
    assert len(frames) >= 20
    for frame in frames:
        parsed = list(parsing.public_trades(frame))
        expected = len(frame["trades"]) + len(frame.get("liquidation_trades") or [])
        assert len(parsed) == expected, frame["type"]


def test_the_ccxt_capture_names_both_parties_and_their_client_order_indexes() -> None:
    (trade,) = parsing.public_trades(_frame("ccxt_mainnet-2025-11-20.jsonl"))
    assert trade == PublicTrade(
        market_id=0, trade_id=526801155, size=Decimal("0.0346"), price=Decimal("3028.85"),
        ask_account_id=99349, bid_account_id=243008, ask_client_id=76303170, bid_client_id=27601,
        is_maker_ask=False, ts_ms=1763623734215)
    # The bid was the maker: it bought, and its account and client order index are the bid's.
    assert (trade.maker_account_id, trade.maker_client_id, trade.maker_side) == (243008, 27601, Side.BUY)


def test_a_client_id_of_zero_is_none_and_a_maker_ask_sold() -> None:
    trade = next(parsing.public_trades(_frame("hftbacktest_mainnet-eth-2026-07-28.jsonl")))
    assert trade.is_maker_ask and trade.maker_side is Side.SELL
    assert (trade.maker_account_id, trade.maker_client_id) == (708516, 2145634480)
    assert trade.bid_client_id is None  # sent as 0: no client order index


def test_the_october_2025_capture_has_no_client_ids() -> None:
    trades = list(parsing.public_trades(_frame("qubx_mainnet-eth-btc-2025-10-09.jsonl")))
    assert trades and all(t.ask_client_id is None and t.bid_client_id is None for t in trades)
    assert all(t.maker_client_id is None for t in trades)


def test_liquidations_are_trades_too() -> None:
    """A liquidation fills a resting order like any taker: its maker may be A's order."""
    frame = _frame("hftbacktest_mainnet-crv-2026-07-29.jsonl")
    trades = list(parsing.public_trades(frame))
    liquidation = frame["liquidation_trades"][0]
    assert any(t.trade_id == liquidation["trade_id"] and t.bid_client_id == 55006172834 for t in trades)


def test_the_old_docs_example_in_seconds_reads_as_ms() -> None:
    (trade,) = parsing.public_trades(_frame("docs_update.jsonl"))
    assert trade.ts_ms == 1722339648000 and trade.ask_client_id is None


def test_a_malformed_trade_is_skipped_and_the_rest_kept() -> None:
    frame = _frame("nautilus_subscribed-and-update.jsonl")
    good = frame["trades"][0]
    frame["trades"] = [{**good, "size": "abc"}, {**good, "price": "0"}, {"trade_id": 1}, "x", good]
    assert [t.trade_id for t in parsing.public_trades(frame)] == [good["trade_id"]]
    assert list(parsing.public_trades({"type": "update/trade", "trades": "nope"})) == []
    assert list(parsing.public_trades({"type": "update/trade"})) == []


def test_the_books_listing_names_each_orders_account() -> None:
    """`orderBookOrders` (captured) read for one account's orders, for B's wash bound from the feed."""
    answer = read_file(CORPUS_DIR / "rest" / "orderBookOrders" / "ccxt_mainnet-2025-11.jsonl")[0].payload
    assert resting_prices_of(answer, 314236, Side.BUY, limit=250) == ([Decimal("3429.80")], None)
    assert resting_prices_of(answer, 134436, Side.BUY, limit=250) == ([], None)  # its order is an ask
    assert resting_prices_of(answer, 134436, Side.SELL, limit=250) == ([Decimal("3430.00")], None)
    # A side listed up to the limit may hide more orders past its deepest price.
    assert resting_prices_of(answer, 1, Side.BUY, limit=1) == ([], Decimal("3429.80"))
    broken = {**answer, "bids": [{"price": "1", "owner_account_index": "x"}]}
    with pytest.raises(ValueError, match="unreadable order"):
        resting_prices_of(broken, 1, Side.BUY, limit=250)
