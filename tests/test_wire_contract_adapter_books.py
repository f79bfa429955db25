"""Wire contract of the adapter: captured order book frames (tests/wire/ws/order_book/) through its book code
(`parse_seq`, `parse_levels`, `LocalBook`), as the book link applies them. Expected values read off the files
at the lines named; sequencing facts from tests/wire/README.md (facts 2 and 3)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from hedge_strategy.exchange.book import BookSeq, DeltaResult, LocalBook, parse_levels, parse_seq
from tests.fixtures.wire import CORPUS_DIR, read_file
from tests.test_wire_contract_kit import frame

APPLIED, GAP = DeltaResult.APPLIED, DeltaResult.GAP


def _parts(payload: dict[str, Any]) -> tuple[BookSeq, list[tuple[D, D]], list[tuple[D, D]]]:
    body = payload["order_book"]
    return parse_seq(payload, body), parse_levels(body.get("bids")), parse_levels(body.get("asks"))


def snapshot(book: LocalBook, payload: dict[str, Any]) -> None:
    assert payload["type"] == "subscribed/order_book"
    seq, bids, asks = _parts(payload)
    book.apply_snapshot(seq, bids, asks, 0)


def delta(book: LocalBook, payload: dict[str, Any]) -> DeltaResult:
    assert payload["type"] == "update/order_book"
    seq, bids, asks = _parts(payload)
    return book.apply_delta(seq, bids, asks, 0)


def top(book: LocalBook) -> tuple[D | None, D | None]:
    return book.best_bid(), book.best_ask()


def test_mainnet_eth_july_2026_chains_by_nonce_and_catches_a_gap() -> None:
    path = "ws/order_book/hftbacktest_mainnet-eth-2026-07-28.jsonl"
    book = LocalBook(0)
    snapshot(book, frame(path, 1))  # nonce 17926042877, begin_nonce 0, offset 2043106
    assert book.seq == BookSeq(offset=2043106, nonce=17926042877, begin_nonce=0)
    assert top(book) == (D("1914.22"), D("1914.28"))
    # line 2: begin_nonce 17926042877 == the snapshot's nonce, although offset jumps by 7
    assert delta(book, frame(path, 2)) is APPLIED
    assert top(book) == (D("1914.24"), D("1914.28"))  # 1914.22 removed ("0.0000"), 1914.24 added
    assert delta(book, frame(path, 3)) is APPLIED  # begin_nonce 17926042944
    assert delta(book, frame(path, 4)) is APPLIED  # begin_nonce 17926043003
    assert top(book) == (D("1914.25"), D("1914.28"))
    assert (book.level_price(is_bid=True, depth=2), book.level_price(is_bid=False, depth=2)) == (
        D("1914.24"), D("1914.42"))  # 1914.23 removed by line 4
    # line 5 came 1.6 s later: begin_nonce 17926044752 is not line 4's nonce 17926043048
    assert delta(book, frame(path, 5)) is GAP
    assert not book.valid


def test_mainnet_crv_july_2026_seven_frames_chain() -> None:
    path = "ws/order_book/hftbacktest_mainnet-crv-2026-07-29.jsonl"
    book = LocalBook(36)
    snapshot(book, frame(path, 1))
    assert (len(book.bids()), len(book.asks())) == (39, 40)
    assert top(book) == (D("0.20351"), D("0.20382"))
    assert delta(book, frame(path, 2)) is APPLIED
    assert top(book) == (D("0.20350"), D("0.20382"))  # 0.20351 deleted as "0.0" (CRV has 1 size decimal)
    assert [delta(book, frame(path, line)) for line in range(3, 8)] == [APPLIED] * 5
    assert book.seq == BookSeq(offset=415812, nonce=18032384785, begin_nonce=18032384667)
    assert top(book) == (D("0.20350"), D("0.20382"))


def test_mainnet_october_2025_offsets_grow_by_one_per_market() -> None:
    books = {0: LocalBook(0), 1: LocalBook(1)}
    verdicts: dict[int, list[DeltaResult]] = {0: [], 1: []}
    records = read_file(CORPUS_DIR / "ws/order_book/qubx_mainnet-eth-btc-2025-10-09.jsonl")
    for rec in records:
        payload = frame("ws/order_book/qubx_mainnet-eth-btc-2025-10-09.jsonl", rec.line)
        market = int(payload["channel"].split(":")[1])
        if rec.line <= 2:
            snapshot(books[market], payload)
            assert payload["order_book"].get("nonce") is None  # before the nonce upgrade
        else:
            verdicts[market].append(delta(books[market], payload))
        if rec.line == 2:  # the best levels of each snapshot (lines 1 and 2)
            assert top(books[0]) == (D("4332.51"), D("4332.75"))
            assert top(books[1]) == (D("121044.3"), D("121044.4"))
    # 54 frames of ETH and 107 of BTC: every delta follows (offset 995816 -> 995869, 1347364 -> 1347470)
    assert verdicts == {0: [APPLIED] * 53, 1: [APPLIED] * 106}
    assert (books[0].offset, books[1].offset) == (995869, 1347470)


def test_single_frames_and_snapshots() -> None:
    # An update without its snapshot never builds a book: the adapter resnapshots instead.
    for path, seq, bids, asks in [
        ("ws/order_book/ccxt_mainnet-2025-11-18.jsonl", BookSeq(11413309, 3107818665, None),
         [(D("2979.36"), D("0.0000"))], [(D("2979.64"), D("61.9487"))]),
        ("ws/order_book/docs_update-offset-only.jsonl", BookSeq(41692864, None, None),
         [(D("3338.80"), D("10.2898"))], [(D("3327.46"), D("29.0915"))]),
        ("ws/order_book/docs_update-with-nonce.jsonl", BookSeq(41692864, 4037957053, 4037957034),
         [(D("3338.80"), D("10.2898"))], [(D("3327.46"), D("29.0915"))]),
        ("ws/order_book/nautilus_update.jsonl", BookSeq(1558300, 9182390020, 9182389998),
         [], [(D("2064.54"), D("0.3285"))]),
    ]:
        payload = frame(path, 1)
        assert _parts(payload) == (seq, bids, asks), path
        assert delta(LocalBook(0), payload) is GAP

    book = LocalBook(0)
    snapshot(book, frame("ws/order_book/nautilus_subscribed.jsonl", 1))
    assert book.seq == BookSeq(2164, 904845, 0)
    assert top(book) == (D("2000.00"), D("2325.00"))
    assert book.asks() == [(D("2325.00"), D("99.0000")), (D("2341.25"), D("340.1028"))]

    empty = LocalBook(39)
    snapshot(empty, frame("ws/order_book/nautilus_subscribed-empty.jsonl", 1))
    assert empty.valid and empty.seq == BookSeq(1, 0, 0) and top(empty) == (None, None)
