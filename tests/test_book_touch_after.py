"""A book that does not show a trade yet (`LocalBook.touch_after`): the touch a hedge's IOC is priced from.

The book is a captured mainnet snapshot (tests/wire/ws/order_book/hftbacktest_mainnet-eth-2026-07-28.jsonl,
line 1: bids 1914.22 x 0.1900, 1914.18 x 8.5318; asks 1914.28 x 0.1021, 1914.42 x 4.5605; `last_updated_at`
1785252530119936 µs, at the top and inside `order_book`). The trades are made up against it (no capture holds
a trade of that book's moment); their `timestamp` is in ms, as in every captured trade frame."""

from __future__ import annotations

from decimal import Decimal as D

from hedge_strategy.exchange.book import (
    DeltaResult,
    LocalBook,
    Traded,
    parse_as_of_us,
    parse_levels,
    parse_seq,
)
from tests.test_wire_contract_kit import frame

ETH_BOOK = "ws/order_book/hftbacktest_mainnet-eth-2026-07-28.jsonl"
AS_OF_US = 1785252530119936
BEFORE_MS, AFTER_MS = AS_OF_US // 1000 - 5, AS_OF_US // 1000 + 20  # a trade the book shows / does not show


def captured_book() -> LocalBook:
    payload = frame(ETH_BOOK, 1)
    body = payload["order_book"]
    book = LocalBook(0)
    book.apply_snapshot(parse_seq(payload, body), parse_levels(body["bids"]), parse_levels(body["asks"]), 0,
                        as_of_us=parse_as_of_us(payload, body))
    return book


def test_the_book_time_is_read_from_captured_frames_and_absent_before_it_was_sent() -> None:
    payload = frame(ETH_BOOK, 2)
    assert parse_as_of_us(payload, payload["order_book"]) == 1785252530170379
    assert captured_book().as_of_us == AS_OF_US
    nov_2025 = frame("ws/order_book/ccxt_mainnet-2025-11-18.jsonl", 1)  # no last_updated_at then
    assert parse_as_of_us(nov_2025, nov_2025["order_book"]) is None


def test_a_trade_that_emptied_the_best_bid_after_the_book_takes_it_out() -> None:
    book = captured_book()
    sold_into = Traded(D("1914.22"), D("0.1900"), AFTER_MS, maker_is_bid=True)
    assert book.touch_after(True, [sold_into]) == D("1914.18")
    assert book.touch_after(False, [sold_into]) == D("1914.28")  # the other side is untouched
    assert book.best_bid() == D("1914.22")  # the book itself is not changed: its next update says


def test_a_trade_that_left_some_of_the_level_keeps_it() -> None:
    part = Traded(D("1914.22"), D("0.1000"), AFTER_MS, maker_is_bid=True)
    assert captured_book().touch_after(True, [part]) == D("1914.22")


def test_a_trade_deeper_than_the_touch_took_every_better_level() -> None:
    deeper = Traded(D("1914.42"), D("0.0001"), AFTER_MS, maker_is_bid=False)  # a buy walked up to 1914.42
    assert captured_book().touch_after(False, [deeper]) == D("1914.42")
    whole = Traded(D("1914.42"), D("4.5605"), AFTER_MS, maker_is_bid=False)
    assert captured_book().touch_after(False, [whole]) is None  # nothing left in this two-level book


def test_a_book_that_shows_the_trade_or_cannot_say_is_taken_as_it_is() -> None:
    book = captured_book()
    shown = Traded(D("1914.22"), D("0.1900"), BEFORE_MS, maker_is_bid=True)
    assert book.touch_after(True, [shown]) == D("1914.22")
    book.as_of_us = None  # a frame without last_updated_at
    assert book.touch_after(True, [Traded(D("1914.22"), D("0.1900"), AFTER_MS, True)]) == D("1914.22")


def test_several_trades_add_up() -> None:
    half = Traded(D("1914.22"), D("0.0950"), AFTER_MS, maker_is_bid=True)
    halves = [half, half]
    assert captured_book().touch_after(True, halves) == D("1914.18")


def test_the_markets_public_trades_since_the_books_state_count_and_go_once_an_update_shows_them() -> None:
    """The background's part of a sweep is no fill of A's: only the public feed names it (a level of 0.19
    of which A's order was 0.0002: A's fill alone leaves the level, the whole sweep empties it)."""
    book = captured_book()
    a_fill = Traded(D("1914.22"), D("0.0002"), AFTER_MS, maker_is_bid=True, trade_id=7)
    rest_of_level = Traded(D("1914.22"), D("0.1898"), AFTER_MS, maker_is_bid=True, trade_id=8)
    assert book.touch_after(True, [a_fill]) == D("1914.22")
    book.note_trade(a_fill)  # the feed brings both trades, the hedge names A's again: counted once
    book.note_trade(rest_of_level)
    book.note_trade(Traded(D("1914.22"), D("0.5"), BEFORE_MS, maker_is_bid=True, trade_id=6))  # shown already
    assert book.touch_after(True, [a_fill]) == D("1914.18")
    assert book.touch_after(True) == D("1914.18")
    payload = frame(ETH_BOOK, 2)  # the next captured update, 50 ms later: its state is past the trades
    body = payload["order_book"]
    bids, asks = parse_levels(body["bids"]), parse_levels(body["asks"])
    as_of_us = parse_as_of_us(payload, body)
    applied = book.apply_delta(parse_seq(payload, body), bids, asks, 0, as_of_us=as_of_us)
    assert applied is DeltaResult.APPLIED
    assert book.touch_after(True) == book.best_bid() == D("1914.24")  # the venue's own levels again


def test_a_book_time_that_is_no_time_in_us_near_the_frame_is_not_trusted() -> None:
    """A captured empty market's snapshot says `last_updated_at: 0` (nautilus_subscribed-empty.jsonl); a time
    in ms (not the venue's unit, made up here from the captured frame) would keep every later trade unshown:
    both are taken as no time, so the book is read as it is."""
    empty = frame("ws/order_book/nautilus_subscribed-empty.jsonl", 1)
    assert parse_as_of_us(empty, empty["order_book"]) is None
    payload = dict(frame(ETH_BOOK, 1))
    payload["last_updated_at"] = AS_OF_US // 1000
    assert parse_as_of_us(payload, payload["order_book"] | {"last_updated_at": AS_OF_US // 1000}) is None
    payload["last_updated_at"] = AS_OF_US - 120_000_000  # two minutes before its frame was sent
    assert parse_as_of_us(payload, payload["order_book"]) is None
