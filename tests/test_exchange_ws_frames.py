"""Stream frames from the wire corpus (tests/wire/): book continuity in both sequencing forms, error frames
in both forms, the shutdown notice.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pytest

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import BookSeq, DeltaResult, LocalBook, parse_levels, parse_seq
from tests.fixtures.wire import records


def book_frames(file_part: str) -> list[dict[str, Any]]:
    frames = [r.payload for r in records(kind="ws", name="order_book") if file_part in r.file.name]
    assert frames, file_part
    return frames


def feed(frames: list[dict[str, Any]], market: str) -> tuple[LocalBook, list[DeltaResult]]:
    """Apply one market's frames in order: the first must be its snapshot."""
    book, results = LocalBook(int(market.split(":")[1])), []
    for frame in [f for f in frames if f["channel"] == market]:
        body = frame["order_book"]
        seq, bids, asks = parse_seq(frame, body), parse_levels(body["bids"]), parse_levels(body["asks"])
        if frame["type"].startswith("subscribed/"):
            book.apply_snapshot(seq, bids, asks, 0)
        else:
            results.append(book.apply_delta(seq, bids, asks, 0))
    return book, results


def test_every_captured_update_chains_by_begin_nonce() -> None:
    frames = book_frames("hftbacktest_mainnet-crv")  # a snapshot and the six updates after it (Jul 2026)
    book, results = feed(frames, "order_book:36")
    assert results == [DeltaResult.APPLIED] * 6
    offsets = [f["offset"] for f in frames]
    assert any(b - a != 1 for a, b in itertools.pairwise(offsets))  # offsets are no sequence
    assert book.seq is not None and book.seq.nonce == frames[-1]["order_book"]["nonce"]


def test_an_update_that_does_not_chain_is_a_gap() -> None:
    # Lines 1-4 chain; line 5 is from 1.6 s later (tests/wire/README.md).
    book, results = feed(book_frames("hftbacktest_mainnet-eth"), "order_book:0")
    assert results == [DeltaResult.APPLIED] * 3 + [DeltaResult.GAP]
    assert not book.valid


def test_the_older_form_chains_by_offset_plus_one() -> None:
    frames = book_frames("qubx_mainnet-eth-btc")  # Oct 2025: no nonces, two markets interleaved
    for market in ("order_book:0", "order_book:1"):
        book, results = feed(frames, market)
        assert results and set(results) == {DeltaResult.APPLIED}, market
        assert book.valid


def test_nonce_without_begin_nonce_is_read_as_the_older_form() -> None:
    frame = book_frames("ccxt_mainnet-2025-11-18")[0]  # Nov 2025: a nonce, no begin_nonce
    seq = parse_seq(frame, frame["order_book"])
    assert seq == BookSeq(offset=11413309, nonce=3107818665, begin_nonce=None)
    book = LocalBook(0)
    book.apply_snapshot(BookSeq(offset=11413308, nonce=None, begin_nonce=None), [], [], 0)
    assert book.apply_delta(seq, [], [], 0) is DeltaResult.APPLIED


def test_every_corpus_book_frame_parses() -> None:
    for rec in records(kind="ws", name="order_book"):
        body = rec.payload["order_book"]
        seq = parse_seq(rec.payload, body)
        assert seq.offset is not None, rec.file.name
        parse_levels(body["bids"]), parse_levels(body["asks"])


def test_stale_updates_and_other_connections_change_nothing() -> None:
    book = LocalBook(1)
    book.apply_snapshot(BookSeq(5, 100, 0), [(Decimal("10"), Decimal("1"))], [], 0, source=1)
    assert book.apply_delta(BookSeq(6, 100, 90), [(Decimal("9"), Decimal("1"))], [], 0, source=1) \
        is DeltaResult.STALE  # already past it
    assert book.apply_delta(BookSeq(6, 120, 100), [(Decimal("9"), Decimal("1"))], [], 0, source=2) \
        is DeltaResult.STALE  # another connection's stream: its snapshot has not replaced ours
    assert book.bids() == [(Decimal("10"), Decimal("1"))]
    assert book.apply_delta(BookSeq(6, 120, 100), [(Decimal("9"), Decimal("1"))], [], 0, source=1) \
        is DeltaResult.APPLIED
    assert book.apply_delta(BookSeq(7, 130, 110), [], [], 0, source=1) is DeltaResult.GAP
    assert book.apply_delta(BookSeq(8, 140, 130), [], [], 0, source=1) is DeltaResult.GAP  # until a snapshot


def control_frames() -> list[dict[str, Any]]:
    return [r.payload for r in records(kind="ws", name="control")]


def test_every_captured_error_frame_is_read() -> None:
    errors = {}
    for frame in control_frames():
        decoded = parsing.decode_frame(json.dumps(frame))
        assert decoded == frame  # typeless error frames are no longer dropped
        error = parsing.ws_error(frame)
        if "error" in frame or frame.get("type") == "error":
            assert error is not None and error.code is not None, frame
            errors[error.code] = error
        else:
            assert error is None
    assert errors[30003].channel in ("order_book:0", "ticker:3")
    assert errors[30009].channel is None and errors[30009].message == "Too Many Websocket Messages!"
    assert errors[20013].channel == "account_all_orders:225671"
    assert errors[20001].channel == "account_all_orders:1"
    assert errors[30005].channel is None


@pytest.mark.parametrize(("frame", "expected"), [
    ({"type": "error", "code": 30012, "channel": "order_book:0", "message": "failed to subscribe"},
     parsing.WsError(30012, "failed to subscribe", "order_book:0")),
    ({"type": "error", "channel": "account_all_orders/7", "code": "21140", "message": "bad token"},
     parsing.WsError(21140, "bad token", "account_all_orders:7")),
    ({"error": {"code": "x", "message": 5}}, parsing.WsError(None, "5", None)),
    ({"type": "update/order_book", "error": {"code": 1}}, None),
])
def test_error_frame_forms(frame: dict[str, Any], expected: parsing.WsError | None) -> None:
    assert parsing.ws_error(frame) == expected


def test_shutdown_delay() -> None:
    shutdown = next(f for f in control_frames() if f.get("type") == "shutdown")
    assert parsing.shutdown_delay_s(shutdown) == shutdown["close_in_ms"] / 1000
    assert parsing.shutdown_delay_s({"type": "shutdown"}) == 0.0
    assert parsing.shutdown_delay_s({"type": "shutdown", "close_in_ms": -5}) == 0.0
