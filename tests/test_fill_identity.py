"""A fill is one trade: the same trade reported twice counts once, a trade id reused by a restarted venue
is a new fill, across journal restarts and in `hedgectl`'s merged reading of the journals."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange.events import Fill, Side
from hedge_strategy.execution.fill_identity import SAME_TRADE_SLACK_MS, disagreement
from hedge_strategy.execution.journal import Intent, Journal, JournalFill, new_order
from hedge_strategy.execution.tracker import OrderTracker
from hedge_strategy.ops.journals import read_fills
from tests.fixtures.execution import JOURNAL_ACCOUNT as ACCOUNT
from tests.fixtures.execution import Announcements

MARKET = 1


def trade(trade_id: int, coid: int, size: str, ts_ms: int, side: Side = Side.BUY) -> Fill:
    return Fill(
        account_index=ACCOUNT, market_id=MARKET, trade_id=trade_id, order_index=2**48 + coid,
        client_order_index=coid, side=side, size=Decimal(size), price=Decimal("95000.0"), is_maker=True,
        fee=Decimal(0), ts_ms=ts_ms,
    )


async def record(journal: Journal, coid: int, size: str = "0.0004", side: Side = Side.BUY) -> None:
    await journal.record_new(new_order(
        client_order_index=coid, account_index=ACCOUNT, market_id=MARKET, intent=Intent.MAKER, side=side,
        size=Decimal(size), price=Decimal("95000.0"), order_type="post_only", now_ms=1_000,
    ))


async def session(journal: Journal, told: Announcements, deliveries: list[tuple[Fill, str]]) -> list[bool]:
    """Feed fills to a tracker on `journal` as a run of the bot would (stream and REST), then stop it."""
    tracker = OrderTracker(journal, asyncio.Queue(), on_fill=told)
    await tracker.start()
    try:
        return [await tracker.ingest_fill(fill, source) for fill, source in deliveries]
    finally:
        await tracker.stop()


async def test_trade_ids_reused_by_a_restarted_venue_are_new_fills_each_announced_once(
    path: Path, told: Announcements, log_lines: list[str]
) -> None:
    # Venue session 1: order 11 fills by trades 1 and 2; reconciliation reads trade 1 again.
    journal = await Journal.open(path, ACCOUNT)
    await record(journal, 11)
    first = [(trade(1, 11, "0.0001", 10_000), "ws"), (trade(2, 11, "0.0003", 10_050), "ws"),
             (trade(1, 11, "0.0001", 10_000), "reconcile")]
    assert await session(journal, told, first) == [True, True, False]
    await journal.close()

    # The venue restarted and numbers trades from 1 again; the bot restarted too (order 11 left memory).
    journal = await Journal.open(path, ACCOUNT)
    try:
        await record(journal, 12)
        second = [(trade(1, 12, "0.0002", 70_000), "ws"), (trade(2, 12, "0.0002", 70_020), "ws"),
                  (trade(2, 12, "0.0002", 70_020), "rest"),  # the same trade from REST: a true duplicate
                  (trade(1, 11, "0.0001", 10_000), "reconcile")]  # session 1's trade 1, still known
        assert await session(journal, told, second) == [True, True, False, False]
        assert told.seen == [(1, 11), (2, 11), (1, 12), (2, 12)]
        assert [(f.trade_id, f.epoch, f.size) for f in journal.fills_for(12)] == [
            (1, 1, Decimal("0.0002")), (2, 1, Decimal("0.0002"))
        ]
        assert journal.get(12).filled_size == Decimal("0.0004")
        assert [(f.trade_id, f.epoch) for f in journal.fills_for(11)] == [(1, 0), (2, 0)]
    finally:
        await journal.close()

    reused = [line for line in log_lines if "reused the id" in line]
    assert len(reused) == 2 and all(line.startswith("WARNING") for line in reused)
    assert "client order index 11" in reused[0] and "epoch 1" in reused[0]
    dropped = [line for line in log_lines if "duplicate report ignored" in line]
    assert len(dropped) == 3 and all(line.startswith("INFO") for line in dropped)
    assert "from rest already recorded from ws" in dropped[1]

    # A third run: every report of either session is known, whichever epoch it is.
    journal = await Journal.open(path, ACCOUNT)
    try:
        again = [(trade(1, 11, "0.0001", 10_000), "reconcile"), (trade(1, 12, "0.0002", 70_000), "reconcile")]
        assert await session(journal, told, again) == [False, False]
        assert journal.unannounced_fills() == []
    finally:
        await journal.close()


async def test_a_self_trade_is_two_fills_under_one_trade_id(journal: Journal, told: Announcements) -> None:
    await record(journal, 21, size="0.0001")
    await record(journal, 22, size="0.0001", side=Side.SELL)
    deliveries = [(trade(5, 21, "0.0001", 9_000), "ws"), (trade(5, 22, "0.0001", 9_000, Side.SELL), "ws")]
    assert await session(journal, told, deliveries) == [True, True]
    assert told.seen == [(5, 21), (5, 22)]


async def test_a_report_lacking_the_client_order_index_is_the_trade_already_held(journal: Journal) -> None:
    await record(journal, 31)
    held = journal.apply_fill(JournalFill(7, 31, ACCOUNT, MARKET, Side.BUY, Decimal("0.0002"),
                                          Decimal("95000.0"), Decimal(0), True, 5_000, "rest"))
    assert held is not None
    # A trade without `bid_client_id` (seen in captured venue traffic) parses with client order index 0.
    lacking = dataclasses.replace(held, client_order_index=0, source="ws")
    assert journal.recorded(lacking) == held  # asking records nothing...
    assert journal.apply_fill(lacking) is None  # ...and applying it is a duplicate
    assert journal.fills_total(31) == Decimal("0.0002")
    assert journal.recorded(dataclasses.replace(lacking, size=Decimal("0.0001"))) is None  # another trade


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_order_index": 99}, "client order index 31 vs 99"),
        ({"order_index": 2**48 + 99}, "order index"),
        ({"size": Decimal("0.0003")}, "size 0.0002 vs 0.0003"),
        ({"price": Decimal("95000.1")}, "price"),
        ({"ts_ms": 5_000 + SAME_TRADE_SLACK_MS + 1}, "time"),
        ({"ts_ms": 5_000 + SAME_TRADE_SLACK_MS, "source": "rest", "fee": Decimal(1)}, None),
        ({"client_order_index": 0, "order_index": None}, None),
    ],
)
def test_what_tells_two_trades_under_one_id_apart(change: dict[str, object], reason: str | None) -> None:
    held = JournalFill(7, 31, ACCOUNT, MARKET, Side.BUY, Decimal("0.0002"), Decimal("95000.0"), Decimal(0),
                       True, 5_000, "ws", order_index=2**48 + 31)
    found = disagreement(held, dataclasses.replace(held, **change))  # type: ignore[arg-type]
    assert found is None if reason is None else reason in (found or "")


async def test_hedgectl_reads_each_trade_once_from_the_trading_and_operator_journals(tmp_path: Path) -> None:
    trading, operator = tmp_path / "journal_101.sqlite", tmp_path / "ops" / "journal_101.sqlite"
    close = JournalFill(3, 33000000000001, ACCOUNT, MARKET, Side.SELL, Decimal("0.0001"), Decimal("94990"),
                        Decimal(0), False, 20_000, "ws")
    reused = JournalFill(3, 11000000000009, ACCOUNT, MARKET, Side.SELL, Decimal("0.0004"), Decimal("95010"),
                         Decimal(0), True, 90_000, "ws")  # a later venue session's trade 3
    for file, fills in ((trading, [close, reused]), (operator, [close])):
        journal = await Journal.open(file, ACCOUNT)
        for fill in fills:
            journal.apply_fill(fill)
        await journal.close()

    read = read_fills([trading, operator])
    assert [(f.trade_id, f.client_order_index, f.size) for f in read] == [
        (3, 33000000000001, Decimal("0.0001")), (3, 11000000000009, Decimal("0.0004"))
    ]
    assert read_fills([trading, operator], since_ms=50_000) == read[1:]
