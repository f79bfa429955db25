"""Positions from the stream (`execution/tracker.py`): when a streamed position may be acted on, and a
positions snapshot (from the wire corpus) replacing the whole set. No exchange: events go straight in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange import (
    AllPositions,
    Fill,
    PositionSnapshot,
    PublicTrade,
    Side,
    StreamDown,
    StreamUp,
)
from hedge_strategy.exchange.parsing import account_events, all_positions
from hedge_strategy.exchange.stream import _AccountLink
from hedge_strategy.exchange.ws_budget import MessageBudget
from hedge_strategy.execution import Journal
from hedge_strategy.execution.tracker import OrderTracker
from tests.fixtures.wire import records

ACCOUNT, BTC, ETH = 516, 1, 0  # the corpus' testnet account
ZERO = Decimal(0)


def position(market_id: int, size: str) -> PositionSnapshot:
    return PositionSnapshot(ACCOUNT, market_id, Decimal(size), ZERO, ZERO, ZERO)


def fill(trade_id: int, market_id: int = BTC) -> Fill:
    return Fill(account_index=ACCOUNT, market_id=market_id, trade_id=trade_id, order_index=9,
                client_order_index=11000000000001, side=Side.BUY, size=Decimal("0.0002"),
                price=Decimal("95000"), is_maker=True, fee=ZERO, ts_ms=1_700_000_000_000)


@pytest.fixture
async def tracker(tmp_path: Path) -> AsyncIterator[OrderTracker]:
    journal = await Journal.open(tmp_path / "journal.sqlite", ACCOUNT)
    yield OrderTracker(journal, asyncio.Queue())
    await journal.close()


async def up_with(tracker: OrderTracker, *held: PositionSnapshot) -> None:
    """The stream as at start: its positions snapshot, then up."""
    await tracker.handle(AllPositions(ACCOUNT, held))
    await tracker.handle(StreamUp(ACCOUNT, reconnect=False))


async def test_a_streamed_position_counts_once_the_stream_is_up_with_a_snapshot(
        tracker: OrderTracker) -> None:
    assert tracker.stream_position(BTC) is None  # nothing heard yet: REST it is
    await tracker.handle(position(BTC, "0.0004"))  # an update alone is not the whole set
    await tracker.handle(StreamUp(ACCOUNT, reconnect=False))
    assert tracker.stream_position(BTC) is None
    await tracker.handle(AllPositions(ACCOUNT, (position(BTC, "0.0004"),)))
    assert tracker.stream_position(BTC) == Decimal("0.0004")
    assert tracker.stream_position(ETH) == 0  # not in the set: flat


async def test_a_position_reported_before_the_last_fill_is_not_offered(tracker: OrderTracker) -> None:
    await up_with(tracker)
    assert tracker.stream_position(BTC) == 0
    assert await tracker.ingest_fill(fill(1), source="ws")
    assert tracker.stream_position(BTC) is None  # the fill is in, its position frame is not yet
    assert tracker.stream_position(ETH) == 0  # another market is not touched by it
    waiting = asyncio.create_task(tracker.wait_stream_position(BTC, timeout=5.0))
    await tracker.handle(position(BTC, "0.0002"))  # the frame that follows the trade on the venue
    assert await waiting == Decimal("0.0002")
    assert not await tracker.ingest_fill(fill(1), source="rest")  # the same trade again: nothing changes
    assert tracker.stream_position(BTC) == Decimal("0.0002")
    assert await tracker.ingest_fill(fill(2), source="ws")
    with pytest.raises(TimeoutError):  # no position frame after it: never offered
        await tracker.wait_stream_position(BTC, timeout=0.01)


async def test_a_stream_that_went_down_counts_again_only_after_a_new_snapshot(tracker: OrderTracker) -> None:
    await up_with(tracker, position(BTC, "0.0002"))
    await tracker.handle(StreamDown(ACCOUNT, "closed"))
    assert tracker.stream_position(BTC) is None
    await tracker.handle(StreamUp(ACCOUNT, reconnect=True))
    assert tracker.stream_position(BTC) is None  # updates were missed while down
    await tracker.handle(AllPositions(ACCOUNT, ()))  # closed meanwhile: not in the new snapshot
    assert tracker.stream_position(BTC) == 0
    assert tracker.positions == {}


async def test_a_rest_answer_read_while_a_fill_came_in_is_not_offered(tracker: OrderTracker) -> None:
    await up_with(tracker)
    read_from = tracker.position_step()  # the reconciler's REST read begins...
    assert await tracker.ingest_fill(fill(3), source="ws")  # ...a fill arrives meanwhile...
    tracker.replace_positions({}, read_from)  # ...and the answer may predate it
    assert tracker.stream_position(BTC) is None
    tracker.replace_positions({BTC: position(BTC, "0.0002")}, tracker.position_step())
    assert tracker.stream_position(BTC) == Decimal("0.0002")


def corpus_frames() -> list[dict[str, object]]:
    return [r.payload for r in records(kind="ws", name="account_all_positions")
            if r.payload["channel"] == f"account_all_positions:{ACCOUNT}"]


async def test_captured_snapshots_replace_the_whole_set(tracker: OrderTracker) -> None:
    frames = corpus_frames()
    snapshots = [f for f in frames if f["type"] == "subscribed/account_all_positions"]
    empty, listed = snapshots[0], snapshots[-1]
    assert empty["positions"] == {}  # an account holding nothing: an empty map (captured)
    flat = all_positions(listed, ACCOUNT)  # BTC listed with size 0 (captured)
    assert flat is not None and [(p.market_id, p.size) for p in flat.positions] == [(BTC, 0)]

    await up_with(tracker, position(BTC, "0.0004"), position(ETH, "-1.5"))
    for frame in (listed, empty):
        await tracker.handle(position(ETH, "-1.5"))  # believed, then gone from the next snapshot
        whole = all_positions(frame, ACCOUNT)
        assert whole is not None
        await tracker.handle(whole)
        assert tracker.positions == {}
        assert (tracker.stream_position(BTC), tracker.stream_position(ETH)) == (0, 0)


async def test_the_account_link_emits_a_snapshot_as_the_whole_set() -> None:
    emitted: list[object] = []
    link = _AccountLink(ACCOUNT, token_source=None, emit=emitted.append,  # type: ignore[arg-type]
                        refresh_margin_s=1.0, ws_url="ws://unused", budget=MessageBudget(), silence_s=20.0,
                        backoff_min_s=0.1, backoff_max_s=1.0)
    snapshot, update = corpus_frames()[-2:]  # subscribed (BTC flat), then an update of BTC
    await link.on_data(None, snapshot, snapshot=True, family="account_all_positions")  # type: ignore[arg-type]
    await link.on_data(None, update, snapshot=False, family="account_all_positions")  # type: ignore[arg-type]
    assert [type(e).__name__ for e in emitted] == ["AllPositions", "PositionSnapshot"]


def test_a_damaged_snapshot_is_not_taken_as_the_whole_set() -> None:
    frame = {"channel": f"account_all_positions:{ACCOUNT}", "type": "subscribed/account_all_positions",
             "positions": {"1": {"market_id": 1, "sign": 1, "position": "0.0004"}, "0": {"position": "x"}}}
    assert all_positions(frame, ACCOUNT) is None  # a market missing from it would read as flat


async def test_an_update_for_a_new_open_order_count_changes_no_position(tracker: OrderTracker) -> None:
    # The venue follows an order placed or canceled with `update/account_all_positions` carrying the new
    # open_order_count and the position as it was (lines 3, 4, 6 of the testnet capture; the simulator sends
    # them too). Such an update leaves every position as believed.
    updates = [f for f in corpus_frames() if f["type"] == "update/account_all_positions"]
    assert [f["positions"]["1"]["open_order_count"] for f in updates] == [1, 0, 0]  # type: ignore[index]
    await up_with(tracker)
    for frame in updates:
        for event in account_events(frame, ACCOUNT):
            await tracker.handle(event)
        assert tracker.positions == {} and tracker.stream_position(BTC) == 0


async def test_the_markets_public_trades_pass_the_tracker_by_quietly(tracker: OrderTracker,
                                                                     log_lines: list[str]) -> None:
    """B's trade feed shares the account's event queue: a public trade is the role's, not the journal's."""
    trade = PublicTrade(market_id=BTC, trade_id=7, size=Decimal("0.0002"), price=Decimal("95000"),
                        ask_account_id=1, bid_account_id=ACCOUNT, ask_client_id=None, bid_client_id=None,
                        is_maker_ask=False, ts_ms=1_700_000_000_000)
    await tracker.handle(trade)
    assert not [line for line in log_lines if line.startswith(("WARNING", "ERROR"))]
