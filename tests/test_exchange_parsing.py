"""Unit tests: wire parsing (orders, trades, positions, frames) and the local order book."""

from decimal import Decimal

import pytest

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import BookSeq, DeltaResult, LocalBook, parse_levels
from hedge_strategy.exchange.events import EndReason, Side, VenueState
from hedge_strategy.exchange.statuses import order_facts

ACCOUNT = 101

ORDER = {
    "order_index": 281474976710662, "client_order_index": 11000000000042, "order_id": "281474976710662",
    "market_index": 1, "owner_account_index": ACCOUNT, "initial_base_amount": "0.00020", "price": "95000.1",
    "nonce": 7, "remaining_base_amount": "0.00005", "is_ask": False, "filled_base_amount": "0.00015",
    "side": "buy", "type": "limit", "time_in_force": "post-only", "status": "open",
    "timestamp": 1751465474001, "created_at": 1751465474000, "updated_at": 1751465474002,
    "brand_new_key": [1],
}

TRADE = {
    "trade_id": 9, "tx_hash": "aa11", "type": "trade", "market_id": 1, "size": "0.00020", "price": "95000.1",
    "ask_id": 281474976710660, "bid_id": 281474976710662, "ask_account_id": 900, "bid_account_id": ACCOUNT,
    "is_maker_ask": False, "timestamp": 1751465474000, "taker_fee": 532, "maker_fee": 76,
    "ask_client_id": 0, "bid_client_id": 11000000000042,
}


def test_order_update_from_order_dict() -> None:
    update = parsing.order_update(ORDER)
    assert update.account_index == ACCOUNT
    assert update.market_id == 1
    assert update.client_order_index == 11000000000042
    assert update.order_index == 281474976710662
    assert update.side is Side.BUY
    assert (update.state, update.end_reason, update.venue_status) == (VenueState.LIVE, None, "open")
    assert update.price == Decimal("95000.1")
    assert (update.initial_size, update.filled_size, update.remaining_size) == (
        Decimal("0.0002"), Decimal("0.00015"), Decimal("0.00005"))
    assert update.ts_ms == 1751465474002


def test_order_update_side_from_text_when_is_ask_missing() -> None:
    order = dict(ORDER, is_ask=None, side="sell")
    assert parsing.order_update(order).side is Side.SELL


def test_order_side_comes_from_is_ask_when_the_side_text_is_empty() -> None:
    assert parsing.order_update(dict(ORDER, is_ask=True, side="")).side is Side.SELL
    assert parsing.order_update(dict(ORDER, is_ask=False, side="")).side is Side.BUY


def test_order_timestamps_in_seconds_become_ms() -> None:
    seconds = dict(ORDER, updated_at=1760287839, timestamp=1760287839, created_at=1760287839)
    assert parsing.order_update(seconds).ts_ms == 1760287839000
    assert parsing.order_update(ORDER).ts_ms == 1751465474002  # ms stay ms
    assert parsing.timestamp_ms(99_999_999_999) == 99_999_999_999_000  # just below 10^11: seconds
    assert parsing.timestamp_ms(100_000_000_000) == 100_000_000_000  # 10^11 and above: ms


def test_an_orders_time_is_its_transaction_time_in_any_unit_else_its_updated_at() -> None:
    seconds = dict(ORDER, updated_at=1785431964, timestamp=1785431964, created_at=1785431956)
    # µs as captured (ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl line 12): 2.7 s later
    # than updated_at, and ms-resolved
    assert parsing.order_update(dict(seconds, transaction_time=1785431966692910)).ts_ms == 1785431966692
    # the same instant in ms or seconds reads the same (never seen; a unit change cannot reorder reports)
    assert parsing.order_update(dict(seconds, transaction_time=1785431966692)).ts_ms == 1785431966692
    assert parsing.order_update(dict(seconds, transaction_time=1785431966)).ts_ms == 1785431966000
    for absent in (None, 0):  # Oct / Dec 2025 orders carry none: updated_at, as before
        assert parsing.order_update(dict(seconds, transaction_time=absent)).ts_ms == 1785431964000


@pytest.mark.parametrize(("status", "state", "reason"), [
    ("open", VenueState.LIVE, None),
    ("pending", VenueState.LIVE, None),
    ("in-progress", VenueState.LIVE, None),
    ("filled", VenueState.FILLED, None),
    ("canceled", VenueState.CANCELED, EndReason.CANCELED_BY_US),
    ("canceled-post-only", VenueState.CANCELED, EndReason.POST_ONLY_WOULD_CROSS),
    ("canceled-reduce-only", VenueState.CANCELED, EndReason.REDUCE_ONLY),
    ("canceled-margin-not-allowed", VenueState.CANCELED, EndReason.MARGIN),
    ("canceled-too-much-slippage", VenueState.CANCELED, EndReason.TOO_MUCH_SLIPPAGE),
    ("canceled-not-enough-liquidity", VenueState.CANCELED, EndReason.NOT_ENOUGH_LIQUIDITY),
    ("canceled-self-trade", VenueState.CANCELED, EndReason.SELF_TRADE),
    ("canceled-expired", VenueState.CANCELED, EndReason.EXPIRED),
    ("canceled-liquidation", VenueState.CANCELED, EndReason.OTHER),
    ("canceled-something-new", VenueState.CANCELED, EndReason.OTHER),
    ("archived", VenueState.UNRECOGNISED, None),
])
def test_venue_statuses_become_venue_neutral_facts(
        status: str, state: VenueState, reason: EndReason | None) -> None:
    assert order_facts(status) == (state, reason)


def test_order_update_rejects_missing_price() -> None:
    order = dict(ORDER)
    del order["price"]
    with pytest.raises(KeyError):
        parsing.order_update(order)


def test_fill_for_bidder_maker() -> None:
    (fill,) = parsing.fills_for_account(TRADE, ACCOUNT)
    assert fill.side is Side.BUY
    assert fill.trade_id == 9
    assert fill.order_index == 281474976710662
    assert fill.client_order_index == 11000000000042
    assert fill.is_maker is True  # is_maker_ask False: the bid side (ours) was the maker
    # maker_fee 76 is a rate in millionths: 76e-6 x 0.0002 x 95000.1 USDC
    assert fill.fee == Decimal("0.00144400152")
    assert fill.size == Decimal("0.0002") and fill.price == Decimal("95000.1")
    assert fill.ts_ms == 1751465474000


def test_fill_for_bidder_taker() -> None:
    (fill,) = parsing.fills_for_account(dict(TRADE, is_maker_ask=True), ACCOUNT)
    assert fill.side is Side.BUY
    assert fill.is_maker is False
    assert fill.fee == Decimal("0.01010801064")  # 532e-6 x 0.0002 x 95000.1


def test_fill_for_asker_maker() -> None:
    trade = dict(TRADE, ask_account_id=ACCOUNT, bid_account_id=900, is_maker_ask=True, ask_client_id=5)
    (fill,) = parsing.fills_for_account(trade, ACCOUNT)
    assert fill.side is Side.SELL
    assert fill.is_maker is True
    assert fill.client_order_index == 5
    assert fill.order_index == 281474976710660
    assert fill.fee == Decimal("0.00144400152")


def test_fee_rates_left_out_mean_zero() -> None:
    trade = {k: v for k, v in TRADE.items() if k not in ("maker_fee", "taker_fee")}
    (fill,) = parsing.fills_for_account(trade, ACCOUNT)
    assert fill.fee == 0


def test_fill_without_client_ids_names_no_client_order_index() -> None:
    trade = {k: v for k, v in TRADE.items() if k not in ("ask_client_id", "bid_client_id")}
    (fill,) = parsing.fills_for_account(trade, ACCOUNT)
    assert fill.client_order_index is None and fill.order_index == 281474976710662
    (zero,) = parsing.fills_for_account(dict(TRADE, bid_client_id=0), ACCOUNT)
    assert zero.client_order_index is None  # 0 is never an order of ours


def test_trade_timestamp_in_seconds_becomes_ms() -> None:
    (fill,) = parsing.fills_for_account(dict(TRADE, timestamp=1751465474), ACCOUNT)
    assert fill.ts_ms == 1751465474000


def test_fill_ignores_other_accounts_trades() -> None:
    assert parsing.fills_for_account(TRADE, 555) == []


def test_position_snapshot_signs() -> None:
    short = {"market_id": 1, "sign": -1, "position": "0.00040", "avg_entry_price": "95000.0",
             "unrealized_pnl": "-1.5", "realized_pnl": "0"}
    snap = parsing.position_snapshot(short, ACCOUNT)
    assert snap.size == Decimal("-0.0004")
    assert snap.unrealized_pnl == Decimal("-1.5")
    flat = dict(short, sign=0, position="0.00000")
    assert parsing.position_snapshot(flat, ACCOUNT).size == 0
    captured_flat = dict(short, sign=1, position="0.00")  # how captures show a flat position
    assert parsing.position_snapshot(captured_flat, ACCOUNT).size == 0
    no_market = dict(short)
    del no_market["market_id"]
    assert parsing.position_snapshot(no_market, ACCOUNT, market_id=3).market_id == 3


def test_parse_items_skips_malformed_items() -> None:
    bad = dict(ORDER, price="not-a-number")
    parsed = list(parsing.parse_items([ORDER, bad, "garbage", ORDER], parsing.order_update, "order"))
    assert len(parsed) == 2
    assert list(parsing.parse_items({"not": "a list"}, parsing.order_update, "order")) == []


def test_by_market_tolerates_bad_keys() -> None:
    assert list(parsing.by_market({"1": [1], "x": [2], "0": [3]}, "orders")) == [(1, [1]), (0, [3])]
    assert list(parsing.by_market([5, 6], "orders")) == [(None, 5), (None, 6)]
    assert list(parsing.by_market("weird", "orders")) == []


DEEP = 100_000  # at lighter-sdk's recursion limit, json.loads on this overflows the C stack (a segfault)


@pytest.mark.parametrize("text", [
    "not json", "[1,2]", '{"no_type": 1}', '{"type": 5}', b"\xff\xfe",
    '{"type": "update/order_book", "order_book": ' + "[" * DEEP + "]" * DEEP + "}",
    '{"type": "update/order_book", "offset": ' + "9" * 10_000 + "}",
])
def test_decode_frame_rejects_malformed(text: str | bytes) -> None:
    assert parsing.decode_frame(text) is None


def test_decode_frame_accepts_objects_with_type() -> None:
    assert parsing.decode_frame('{"type":"ping","extra":1}') == {"type": "ping", "extra": 1}


def test_channel_key_normalises() -> None:
    assert parsing.channel_key("order_book/1") == "order_book:1"
    assert parsing.channel_key("order_book:1") == "order_book:1"


def test_to_decimal_never_uses_binary_floats() -> None:
    assert parsing.to_decimal(0.1) == Decimal("0.1")
    with pytest.raises(ValueError):
        parsing.to_decimal("Infinity")
    with pytest.raises(ValueError):
        parsing.to_decimal(None)


def at(offset: int) -> BookSeq:
    """The older sequencing form (Oct 2025 captures): offset +1 per update, no nonces."""
    return BookSeq(offset=offset, nonce=None, begin_nonce=None)


def _levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(s)) for p, s in pairs]


def test_book_snapshot_and_sorted_levels() -> None:
    book = LocalBook(1)
    assert not book.valid
    book.apply_snapshot(at(10), _levels(("99", "1"), ("100", "2"), ("98", "1")),
                        _levels(("102", "1"), ("101", "3")), ts_ms=1)
    assert book.best_bid() == Decimal("100") and book.best_ask() == Decimal("101")
    assert book.level_price(is_bid=True, depth=2) == Decimal("99")
    assert book.level_price(is_bid=False, depth=2) == Decimal("102")
    assert book.level_price(is_bid=False, depth=3) is None
    with pytest.raises(ValueError):
        book.level_price(is_bid=True, depth=0)


def test_book_delta_replaces_removes_and_inserts_in_order() -> None:
    book = LocalBook(1)
    book.apply_snapshot(at(10), _levels(("100", "2"), ("99", "1")), _levels(("101", "3")), ts_ms=1)
    result = book.apply_delta(
        at(11), _levels(("100", "0"), ("99.5", "4")), _levels(("100.5", "1"), ("101", "5")), 2)
    assert result is DeltaResult.APPLIED
    assert book.bids() == _levels(("99.5", "4"), ("99", "1"))
    assert book.asks() == _levels(("100.5", "1"), ("101", "5"))
    assert book.offset == 11


def test_book_gap_invalidates_until_snapshot() -> None:
    book = LocalBook(1)
    assert book.apply_delta(at(5), [], [], 0) is DeltaResult.GAP  # no snapshot yet
    book.apply_snapshot(at(10), _levels(("100", "1")), _levels(("101", "1")), ts_ms=1)
    assert book.apply_delta(at(10), [], [], 2) is DeltaResult.STALE
    assert book.apply_delta(at(12), _levels(("100", "0")), [], 3) is DeltaResult.GAP
    assert not book.valid
    assert book.best_bid() == Decimal("100")  # the gapped delta was not applied
    assert book.apply_delta(at(13), [], [], 4) is DeltaResult.GAP
    book.apply_snapshot(at(20), [], _levels(("101", "1")), ts_ms=5)
    assert book.valid and book.best_bid() is None
    assert book.apply_delta(at(21), _levels(("100", "1")), [], 6) is DeltaResult.APPLIED


def test_parse_levels() -> None:
    assert parse_levels([{"price": "95000.1", "size": "0.50000", "x": 1}]) == _levels(("95000.1", "0.5"))
    assert parse_levels(None) == []
    for bad in ("nope", [{"price": "1"}], [{"price": "1", "size": "-1"}], [5]):
        with pytest.raises((ValueError, KeyError)):
            parse_levels(bad)
