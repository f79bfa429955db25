"""Unit tests of the order journal (SQLite, WAL): durability, background writes, dedup, the state machine."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.exchange.events import EndReason, OrderUpdate, Side, VenueState
from hedge_strategy.execution import journal as journal_module
from hedge_strategy.execution.journal import (
    DuplicateOrderError,
    Intent,
    Journal,
    JournalFill,
    JournalOrder,
    OrderState,
    new_order,
)

ACCOUNT = 101
MARKET = 1
S = OrderState


def make_order(coid: int, size: str = "0.0004", created_ms: int = 1_000) -> JournalOrder:
    return new_order(
        client_order_index=coid,
        account_index=ACCOUNT,
        market_id=MARKET,
        intent=Intent.MAKER,
        side=Side.BUY,
        size=Decimal(size),
        price=Decimal("95000.0"),
        order_type="post_only",
        now_ms=created_ms,
        request_id=f"req-{coid}",
    )


def make_fill(trade_id: int, coid: int, size: str = "0.0002", price: str = "95000.0") -> JournalFill:
    return JournalFill(
        trade_id=trade_id,
        client_order_index=coid,
        account_index=ACCOUNT,
        market_id=MARKET,
        side=Side.BUY,
        size=Decimal(size),
        price=Decimal(price),
        fee=Decimal("0.001"),
        is_maker=True,
        ts_ms=2_000 + trade_id,
        source="ws",
    )


def make_update(
    coid: int, state: VenueState, end: EndReason | None = None, filled: str = "0", size: str = "0.0004"
) -> OrderUpdate:
    return OrderUpdate(
        account_index=ACCOUNT,
        market_id=MARKET,
        client_order_index=coid,
        order_index=2**48 + coid,
        side=Side.BUY,
        state=state,
        end_reason=end,
        price=Decimal("95000.0"),
        initial_size=Decimal(size),
        filled_size=Decimal(filled),
        remaining_size=Decimal(size) - Decimal(filled),
        ts_ms=3_000,
    )


def raw_state(path: Path, coid: int) -> tuple[str, str] | None:
    """(state, filled_size) as a separate connection sees them on disk."""
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT state, filled_size FROM orders WHERE client_order_index = ?", (coid,)
        ).fetchone()
    return (row[0], row[1]) if row else None


async def test_record_new_is_on_disk_before_it_returns(path: Path, journal: Journal) -> None:
    await journal.record_new(make_order(11))
    # A second journal on the same file (a new connection) stands in for a restarted process.
    other = await Journal.open(path, ACCOUNT)
    try:
        seen = other.get(11)
        assert seen is not None
        assert seen.state is S.PENDING_SUBMIT
        assert seen.request_id == "req-11"
        assert [o.client_order_index for o in other.unresolved()] == [11]
    finally:
        await other.close()


RECORD_THEN_HANG = """
import asyncio, sys
from decimal import Decimal
from hedge_strategy.exchange.events import Side
from hedge_strategy.execution.journal import Intent, Journal, new_order

async def main() -> None:
    journal = await Journal.open(sys.argv[1], 101)
    await journal.record_new(new_order(client_order_index=12, account_index=101, market_id=1,
                                       intent=Intent.HEDGE, side=Side.SELL, size=Decimal("0.0002"),
                                       price=Decimal("95000.0"), order_type="ioc", now_ms=1_000))
    print("recorded", flush=True)
    await asyncio.Event().wait()  # killed here, the journal never closed

asyncio.run(main())
"""


async def test_record_new_survives_a_kill_of_the_process(path: Path) -> None:
    """The write-ahead's promise (synchronous=NORMAL in WAL mode): a row recorded before the send is there
    for the next process however this one ends."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", RECORD_THEN_HANG, str(path),
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), timeout=60) == b"recorded\n"
    finally:
        proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reopened = await Journal.open(path, ACCOUNT)
    try:
        seen = reopened.get(12)
        assert seen is not None and seen.state is S.PENDING_SUBMIT
    finally:
        await reopened.close()


async def test_changes_apply_in_memory_first_then_reach_disk_on_close(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    await journal.record_new(make_order(21))
    journal.mark_sent(21, 1_500)
    assert journal.transition(21, S.OPEN, order_index=555)
    assert journal.apply_fill(make_fill(1, 21))
    journal.set_meta("watermark", "42")
    # The caller's view changed at once; the background writer has not run yet (no await since).
    assert journal.get(21).state is S.PARTIALLY_FILLED
    assert raw_state(path, 21) == ("pending_submit", "0")
    await journal.close()

    assert raw_state(path, 21) == ("partially_filled", "0.0002")
    reopened = await Journal.open(path, ACCOUNT)
    try:
        order = reopened.get(21)
        assert order.sent_ms == 1_500
        assert order.order_index == 555
        assert order.filled_size == Decimal("0.0002")
        assert order.filled_quote == Decimal("19.0000")
        assert [f.trade_id for f in reopened.fills_for(21)] == [1]
        assert reopened.get_meta("watermark") == "42"
    finally:
        await reopened.close()


async def test_background_writer_persists_without_close(path: Path, journal: Journal) -> None:
    await journal.record_new(make_order(31))
    journal.transition(31, S.OPEN)
    await journal.flush()
    assert raw_state(path, 31) == ("open", "0")


async def test_the_writer_lets_the_tasks_woken_with_it_go_first(journal: Journal) -> None:
    """A's fill wakes the writer (the fill is stored) before the outbox (the request): the outbox's publish
    must not wait behind the batch's rows and thread (bench/README.md, "Hedge path (session 4)")."""
    order: list[str] = []
    written = asyncio.Event()
    write_pending = journal._write_pending

    async def spy_write() -> None:
        order.append("batch")
        await write_pending()
        written.set()

    journal._write_pending = spy_write  # type: ignore[method-assign]
    woken = asyncio.Event()

    async def outbox() -> None:
        await woken.wait()
        order.append("outbox")

    task = asyncio.create_task(outbox())
    await asyncio.sleep(0)  # the outbox waits on its event, as A's does
    journal.set_meta("watermark", "1")  # wakes the writer first
    woken.set()
    await asyncio.wait_for(written.wait(), 10)
    await task
    assert order == ["outbox", "batch"]


async def test_sequences_strictly_increase_across_restarts(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    first = [journal.next_sequence("maker") for _ in range(3)]
    other_name = journal.next_sequence("close")
    # Durable when returned: another connection already reads the last number.
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT value FROM meta WHERE key = 'seq:maker'").fetchone()[0]
    assert stored == str(first[-1])
    await journal.close()

    reopened = await Journal.open(path, ACCOUNT)
    try:
        later = [reopened.next_sequence("maker") for _ in range(2)]
        assert first == [1, 2, 3]
        assert other_name == 1
        assert later == [4, 5]
    finally:
        await reopened.close()


async def test_a_fill_seen_twice_counts_once(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    await journal.record_new(make_order(41))
    assert journal.apply_fill(make_fill(7, 41))
    assert not journal.apply_fill(make_fill(7, 41))  # the same trade from REST
    assert journal.get(41).filled_size == Decimal("0.0002")
    assert journal.apply_fill(make_fill(8, 41))
    assert journal.get(41).state is S.FILLED
    await journal.close()

    # After a restart the FILLED order is not preloaded, yet its trade ids are still known.
    reopened = await Journal.open(path, ACCOUNT)
    try:
        assert reopened.unresolved() == []
        assert not reopened.apply_fill(make_fill(7, 41))
        assert reopened.get(41).filled_size == Decimal("0.0004")
        assert [f.trade_id for f in reopened.fills_for(41)] == [7, 8]
    finally:
        await reopened.close()


async def test_fills_before_the_open_update_and_stale_updates_after(journal: Journal) -> None:
    await journal.record_new(make_order(51))
    assert journal.apply_fill(make_fill(1, 51))  # the fill overtakes the "open" update
    assert journal.get(51).state is S.PARTIALLY_FILLED
    # The late "open" update (filled 0) must not move the order backwards.
    journal.apply_order_update(make_update(51, VenueState.LIVE, filled="0"))
    order = journal.get(51)
    assert order.state is S.PARTIALLY_FILLED
    assert order.filled_size == Decimal("0.0002")
    assert order.order_index == 2**48 + 51
    journal.apply_order_update(make_update(51, VenueState.FILLED, filled="0.0004"))
    assert order.state is S.FILLED
    journal.apply_order_update(make_update(51, VenueState.LIVE, filled="0.0002"))
    assert order.state is S.FILLED


async def test_exchange_filled_size_counts_while_fills_are_in_flight(journal: Journal) -> None:
    await journal.record_new(make_order(61))
    canceled = make_update(61, VenueState.CANCELED, EndReason.CANCELED_BY_US, filled="0.0002")
    journal.apply_order_update(canceled)
    order = journal.get(61)
    assert (order.state, order.reason) == (S.CANCELED, "canceled_by_us")
    assert order.end_reason is EndReason.CANCELED_BY_US
    assert order.filled_size == Decimal("0.0002")
    assert journal.fills_total(61) == Decimal(0)
    # The fill that raced the cancel arrives: recorded, counted once, state stays terminal.
    assert journal.apply_fill(make_fill(9, 61))
    assert order.filled_size == Decimal("0.0002")
    assert journal.fills_total(61) == Decimal("0.0002")
    assert order.state is S.CANCELED


END = EndReason


@pytest.mark.parametrize(
    ("venue", "end", "filled", "state", "reason"),
    [
        (VenueState.LIVE, None, "0", S.OPEN, None),
        (VenueState.LIVE, None, "0.0001", S.PARTIALLY_FILLED, None),
        (VenueState.FILLED, None, "0.0004", S.FILLED, None),
        (VenueState.CANCELED, END.CANCELED_BY_US, "0", S.CANCELED, END.CANCELED_BY_US),
        (VenueState.CANCELED, END.POST_ONLY_WOULD_CROSS, "0", S.CANCELED, END.POST_ONLY_WOULD_CROSS),
        (VenueState.CANCELED, END.TOO_MUCH_SLIPPAGE, "0.0001", S.CANCELED, END.TOO_MUCH_SLIPPAGE),
        (VenueState.CANCELED, None, "0", S.CANCELED, END.OTHER),
    ],
)
async def test_venue_facts_map_to_state(
    journal: Journal,
    venue: VenueState,
    end: EndReason | None,
    filled: str,
    state: OrderState,
    reason: EndReason | None,
) -> None:
    await journal.record_new(make_order(71))
    assert journal.apply_order_update(make_update(71, venue, end, filled=filled))
    order = journal.get(71)
    assert (order.state, order.end_reason, order.filled_size) == (state, reason, Decimal(filled))


async def test_unknown_status_leaves_state(journal: Journal) -> None:
    await journal.record_new(make_order(72))
    journal.apply_order_update(make_update(72, VenueState.UNRECOGNISED))
    assert journal.get(72).state is S.PENDING_SUBMIT


# Written out independently of the implementation's table, from the rules in the task.
_ALLOWED = {
    S.PENDING_SUBMIT: {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.UNKNOWN},
    S.UNKNOWN: {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED},
    S.OPEN: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED},
    S.PARTIALLY_FILLED: {S.FILLED, S.CANCELED},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
}


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("target", list(S))
async def test_every_transition_rule(journal: Journal, start: OrderState, target: OrderState) -> None:
    await journal.record_new(make_order(81))
    if start is not S.PENDING_SUBMIT:
        assert journal.transition(81, start, reason="setup")
    allowed = target in _ALLOWED[start]
    assert journal.transition(81, target, reason="test") is allowed
    assert journal.get(81).state is (target if allowed else start)


async def test_illegal_moves_keep_state_and_reason(path: Path, journal: Journal) -> None:
    await journal.record_new(make_order(91))
    assert journal.transition(91, S.REJECTED, reason="never reached the exchange")
    assert not journal.transition(91, S.OPEN)
    assert not journal.transition(91, S.CANCELED, reason="late")
    order = journal.get(91)
    assert (order.state, order.reason) == (S.REJECTED, "never reached the exchange")
    await journal.flush()
    assert raw_state(path, 91) == ("rejected", "0")
    # Only the exchange's word moves a rejected order: test_late_execution.py


async def test_a_terminal_order_contradicted_by_the_exchange_is_kept(journal: Journal) -> None:
    await journal.record_new(make_order(92))
    assert journal.transition(92, S.CANCELED, reason="canceled_by_us")
    journal.apply_order_update(make_update(92, VenueState.LIVE))
    assert journal.get(92).state is S.CANCELED  # a stale update after the end: terminal, kept


async def test_record_new_refuses_a_known_index_even_after_restart(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    await journal.record_new(make_order(101))
    with pytest.raises(DuplicateOrderError):
        await journal.record_new(make_order(101))
    await journal.close()
    reopened = await Journal.open(path, ACCOUNT)
    try:
        reopened.transition(101, S.REJECTED)
        await reopened.flush()
        with pytest.raises(DuplicateOrderError):
            await reopened.record_new(make_order(101))
    finally:
        await reopened.close()


async def test_record_new_checks_account_and_state(journal: Journal) -> None:
    foreign = make_order(111)
    foreign.account_index = 999
    with pytest.raises(ValueError, match="account"):
        await journal.record_new(foreign)
    opened = make_order(112)
    opened.state = S.OPEN
    with pytest.raises(ValueError, match="PENDING_SUBMIT"):
        await journal.record_new(opened)


async def test_fill_for_an_unknown_order_is_kept(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    assert journal.apply_fill(make_fill(5, 999_999))
    assert not journal.apply_fill(make_fill(5, 999_999))
    await journal.close()
    reopened = await Journal.open(path, ACCOUNT)
    try:
        assert [f.trade_id for f in reopened.fills_for(999_999)] == [5]
        assert reopened.get(999_999) is None
    finally:
        await reopened.close()


async def test_unannounced_fills_survive_a_restart(path: Path) -> None:
    journal = await Journal.open(path, ACCOUNT)
    await journal.record_new(make_order(121))
    journal.apply_fill(make_fill(1, 121))
    journal.apply_fill(make_fill(2, 121))
    journal.mark_announced(make_fill(1, 121).key)
    assert [f.trade_id for f in journal.unannounced_fills()] == [2]
    await journal.close()
    reopened = await Journal.open(path, ACCOUNT)
    try:
        assert [f.trade_id for f in reopened.unannounced_fills()] == [2]
        reopened.mark_announced(make_fill(2, 121).key)
        await reopened.flush()
    finally:
        await reopened.close()
    third = await Journal.open(path, ACCOUNT)
    try:
        assert third.unannounced_fills() == []
    finally:
        await third.close()


async def test_settled_orders_leave_memory_and_reload_whole(
    path: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "_EVICT_ABOVE", 0)
    monkeypatch.setattr(journal_module, "_EVICT_AFTER_MS", -60_000)  # everything counts as old
    await journal.record_new(make_order(131))
    journal.apply_fill(make_fill(1, 131))
    journal.apply_fill(make_fill(2, 131))
    journal.mark_announced(make_fill(1, 131).key)
    journal.mark_announced(make_fill(2, 131).key)
    await journal.flush()  # eviction runs after a batch is written
    assert 131 not in journal._orders  # left memory...
    order = journal.get(131)  # ...and comes back with its fills
    assert order is not None and order.state is S.FILLED
    assert journal.fills_total(131) == Decimal("0.0004")
    assert not journal.apply_fill(make_fill(2, 131))


async def test_concurrent_record_new_of_one_index_lets_exactly_one_through(journal: Journal) -> None:
    results = await asyncio.gather(
        journal.record_new(make_order(141)), journal.record_new(make_order(141)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, DuplicateOrderError) for r in results) == 1
