"""The pieces of `hedgectl preflight` that need no venue: the recorder's masking, frame names and strict
parsing, book continuity, error frames matched to their channel, and the clock-skew bounds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

from hedge_strategy.exchange.preflight_frames import BookContinuity, frame_problems, record_name
from hedge_strategy.exchange.preflight_reads import Observed, RestAnswer, account_facts, timestamp_ms
from hedge_strategy.exchange.preflight_watch import WatchReport, busiest_minute
from hedge_strategy.ops.preflight_checks import Venue, Verdict
from hedge_strategy.ops.preflight_record import Recorder
from hedge_strategy.ops.preflight_stream import check_clock_skew
from tests.fixtures.wire import read_file, records

KEY = "ab" * 40
TOKEN = f"{int(time.time()) + 600}:101:3:" + "cd" * 40


def test_recorder_masks_keys_and_tokens_anywhere_in_a_payload(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    recorder = Recorder(path)
    recorder.mask_key(KEY)
    recorder.mask_token(TOKEN)
    recorder(Observed("rest", "accountLimits", {"code": 20013, "message": f"invalid auth: {TOKEN}"}, 401))
    recorder(Observed("ws", "control", {"echo": {f"0x{KEY}": [KEY.upper(), "short 1:2:3:abc"]}}))
    recorder(Observed("ws", "control", "not json {"))
    recorder.close()

    text = path.read_text()
    assert KEY not in text.lower() and TOKEN not in text and "cd" * 20 not in text
    first, second, third = read_file(path)
    assert (first.kind, first.name, first.http_status) == ("rest", "accountLimits", 401)
    assert first.payload["message"] == "invalid auth: <masked-token>"
    assert second.payload == {"echo": {"<masked-hex80>": ["<masked-hex80>", "short 1:2:3:abc"]}}
    assert "http_status" not in json.loads(text.splitlines()[1])
    assert third.payload == "not json {"


def test_frame_names_follow_the_corpus() -> None:
    assert record_name({"type": "update/order_book", "channel": "order_book:1"}) == "order_book"
    assert record_name({"type": "subscribed/account_all_orders"}) == "account_all_orders"
    assert record_name({"type": "jsonapi/sendtx", "data": {}}) == "sendtx"
    for control in ({"type": "connected"}, {"type": "pong"}, {"type": "unsubscribed", "channel": "x:1"},
                    {"error": {"code": 30003, "message": "Already Subscribed"}}, [1, 2], "text"):
        assert record_name(control) == "control"
    # The corpus itself agrees: every captured frame is filed under the name preflight would record it by.
    for rec in records(kind="ws"):
        if rec.name in ("order_book", "account_all_orders", "control"):
            assert record_name(rec.payload) == rec.name, rec.file


def test_every_captured_frame_of_the_bots_channels_parses_strictly() -> None:
    for name in ("order_book", "account_all_orders", "account_all_trades", "account_all_positions",
                 "account_tx", "trade"):
        for rec in records(kind="ws", name=name):
            assert frame_problems(rec.payload, 225671) == [], (rec.file, rec.line)


def test_frame_problems_name_what_the_adapter_cannot_read() -> None:
    bad_order = {"type": "update/account_all_orders", "orders": {"1": [{"order_index": "x"}]}}
    assert frame_problems(bad_order, 101)[0].startswith("order: ")
    assert frame_problems({"type": "update/account_all_orders", "orders": {"BTC": []}}, 101) != []
    bad_tx = {"type": "update/account_tx", "txs": [{"hash": "ab", "type": 14, "event_info": "{"}]}
    assert frame_problems(bad_tx, 101)[0].startswith("transaction: ")
    assert frame_problems({"type": "update/order_book", "order_book": {"asks": "x", "offset": 1}}, 101) != []
    assert frame_problems({"type": "update/order_book", "order_book": {"nonce": "n", "bids": []}}, 101) != []
    bad_trade = {"type": "update/trade", "trades": [{"trade_id": 1, "size": "x"}]}
    assert frame_problems(bad_trade, 101)[0].startswith("public trade: ")
    assert frame_problems({"type": "update/trade", "trades": {"1": []}}, 101) != []
    ok_book = {"type": "update/order_book", "offset": 3,
               "order_book": {"asks": [{"price": "1", "size": "0"}]}}
    assert frame_problems(ok_book, 101) == []


def _book(kind: str, **seq: int) -> dict[str, Any]:
    body = {"asks": [], "bids": [], **seq}
    return {"type": f"{kind}/order_book", "channel": "order_book:1", "order_book": body}


def test_book_continuity_is_the_adapters_rule_and_goes_on_after_a_break() -> None:
    by_nonce = BookContinuity(1)
    by_nonce.see(_book("subscribed", nonce=10, begin_nonce=0, offset=5), snapshot=True)
    by_nonce.see(_book("update", nonce=12, begin_nonce=10, offset=99), snapshot=False)  # offsets jump: fine
    by_nonce.see(_book("update", nonce=15, begin_nonce=13, offset=100), snapshot=False)
    by_nonce.see(_book("update", nonce=16, begin_nonce=15, offset=101), snapshot=False)  # checked from 15
    assert (by_nonce.updates, by_nonce.breaks, by_nonce.rule) == (3, 1, "nonce")
    assert by_nonce.examples == ["begin_nonce 13 after nonce 12"]

    by_offset = BookContinuity(1)
    by_offset.see(_book("update", offset=3), snapshot=False)
    by_offset.see(_book("update", offset=4), snapshot=False)
    by_offset.see(_book("update", offset=6), snapshot=False)
    assert (by_offset.updates, by_offset.breaks, by_offset.rule) == (3, 2, "offset")
    assert by_offset.examples == ["an update before any snapshot",
                                  "offset 6 after 4 (no nonces: the offset + 1 rule)"]


def test_timestamps_in_seconds_or_ms_and_account_tiers() -> None:
    assert timestamp_ms(1_770_000_000) == (1_770_000_000_000, 1000)
    assert timestamp_ms(1_770_000_000_123) == (1_770_000_000_123, 1)
    assert timestamp_ms("1") == (None, 0)
    for rec in records(kind="rest", name="account"):  # captured: standard accounts are account_type 0
        assert account_facts(rec.payload, 1).tier == ("standard", True)
    premium = account_facts({"accounts": [{"account_type": 1, "available_balance": "5", "positions": []}]}, 7)
    assert premium.tier == ("premium", False)  # inferred, and said so


def _venue_with_status(stamp_s: float, sent_s: float, received_s: float) -> Venue:
    venue = Venue(config=cast(Any, None), reads=cast(Any, None), throttle=cast(Any, None))
    body = {"status": 200, "timestamp": int(stamp_s)}
    venue.status = RestAnswer("status", 200, body, None, sent_s, received_s)
    return venue


def test_clock_skew_bounds_from_the_status_and_the_frames() -> None:
    now = time.time()
    in_sync = check_clock_skew(_venue_with_status(now, now - 0.01, now + 0.01), {})
    assert in_sync.verdict is Verdict.PASS and "GET / timestamp (s)" in in_sync.detail
    behind = check_clock_skew(_venue_with_status(now + 45, now, now + 0.02), {})
    assert behind.verdict is Verdict.FAIL and "sync the clock" in behind.fix
    slightly = check_clock_skew(_venue_with_status(now - 3, now, now + 0.02), {})
    assert slightly.verdict is Verdict.WARN
    # A frame stamped 2.5 s after it arrived says the local clock is at least 2.5 s behind.
    frames_only = _venue_with_status(now, now, now)
    frames_only.status = None
    report = WatchReport(101, BookContinuity(1), skews_ms=[-2500.0, 40.0])
    framed = check_clock_skew(frames_only, {"a": report})
    assert framed.verdict is Verdict.WARN
    assert framed.detail == "local - venue between unbounded and -2.500 s (from 2 frame timestamps)"


def test_busiest_minute_counts_a_rolling_window() -> None:
    assert busiest_minute([]) == 0
    assert busiest_minute([0, 1, 2, 59.9, 60, 61, 200]) == 4  # [0, 60) and [2, 62) hold four each
