"""Unit tests of reconciliation logic against a scripted stand-in for the exchange adapter.

The integration tests (tests/test_recovery*.py) run the same code against the simulator with the real
adapter and SDK; these pin down the decisions (grace, watermark, dedup, failures) deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import pytest

from hedge_strategy.exchange.events import (
    EndReason,
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    Side,
    StreamUp,
    TxOutcome,
    VenueState,
)
from hedge_strategy.exchange.markets import MarketInfo
from hedge_strategy.exchange.rest import VenueError
from hedge_strategy.execution.journal import Intent, Journal, JournalOrder, OrderState, new_order
from hedge_strategy.execution.orders import OrderExecutor
from hedge_strategy.execution.reconcile import NEVER_REACHED, WATERMARK_KEY, Reconciler, now_ms
from hedge_strategy.execution.tracker import OrderTracker
from hedge_strategy.observe import NO_EVENTS, HedgeMetrics, RoleEvents
from tests.fixtures.execution import Announcements

ACCOUNT = 101
BTC = MarketInfo("BTC", 1, 5, 1, Decimal("0.00020"), Decimal("10"))
GRACE_S = 5.0


class ScriptedExchange:
    """Answers like `LighterAccount` from fields the test sets; records what it was asked."""

    def __init__(self) -> None:
        self.position_sizes: dict[int, Decimal] = {}
        self.orders: dict[int, OrderUpdate] = {}
        self.trades: list[Fill] = []
        self.failing: set[str] = set()
        self.trade_queries: list[int] = []
        self.lookups: list[list[int]] = []
        self.lookup_ms: list[int] = []  # when each lookup came
        self.positions_gate: asyncio.Event | None = None  # when set up, positions() waits on it
        self.positions_entered = asyncio.Event()
        self.txs: dict[str, TxOutcome] = {}  # transactions readable by hash
        self.tx_lookups: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        if what in self.failing:
            raise ConnectionError(f"{what} unavailable")

    async def positions(self) -> dict[int, PositionSnapshot]:
        self._maybe_fail("positions")
        self.positions_entered.set()
        if self.positions_gate is not None:
            await self.positions_gate.wait()
        return {
            m: PositionSnapshot(ACCOUNT, m, size, Decimal("95000"), Decimal(0), Decimal(0))
            for m, size in self.position_sizes.items()
            if size != 0
        }

    async def orders_by_client_index(self, coids: Sequence[int]) -> dict[int, OrderUpdate]:
        self._maybe_fail("orders")
        self.lookups.append(list(coids))
        self.lookup_ms.append(now_ms())
        return {c: self.orders[c] for c in coids if c in self.orders}

    async def open_orders(self, market: MarketInfo | None = None) -> list[OrderUpdate]:
        self._maybe_fail("open_orders")
        return [u for u in self.orders.values() if u.state is VenueState.LIVE]

    async def trades_since(self, since_ms: int, market: MarketInfo | None = None) -> list[Fill]:
        self._maybe_fail("trades")
        self.trade_queries.append(since_ms)
        return [
            t
            for t in self.trades
            if t.ts_ms >= since_ms and (market is None or t.market_id == market.market_id)
        ]

    async def tx_outcome(self, tx_hash: str) -> TxOutcome | None:
        self._maybe_fail("tx")
        self.tx_lookups.append(tx_hash)
        return self.txs.get(tx_hash)

    def market_by_id(self, market_id: int) -> MarketInfo:
        return BTC


def update(
    coid: int, state: VenueState, end: EndReason | None = None, filled: str = "0", size: str = "0.0004"
) -> OrderUpdate:
    return OrderUpdate(
        ACCOUNT, 1, coid, 2**48 + coid, Side.BUY, state, end, Decimal("95000.0"), Decimal(size),
        Decimal(filled), Decimal(size) - Decimal(filled), now_ms(),
    )  # fmt: skip


def trade(trade_id: int, coid: int, ts_ms: int, size: str = "0.0002") -> Fill:
    return Fill(
        ACCOUNT, 1, trade_id, 2**48 + coid, coid, Side.BUY, Decimal(size), Decimal("95000.0"), True,
        Decimal(0), ts_ms,
    )  # fmt: skip


async def record(
    journal: Journal, coid: int, *, age_s: float = 0.0, sent_age_s: float | None = None
) -> JournalOrder:
    created = now_ms() - int(age_s * 1000)
    order = new_order(
        client_order_index=coid, account_index=ACCOUNT, market_id=1, intent=Intent.MAKER, side=Side.BUY,
        size=Decimal("0.0004"), price=Decimal("95000.0"), order_type="post_only", now_ms=created,
    )  # fmt: skip
    await journal.record_new(order)
    if sent_age_s is not None:
        journal.mark_sent(coid, now_ms() - int(sent_age_s * 1000))
    return order


@pytest.fixture
def exchange() -> ScriptedExchange:
    return ScriptedExchange()


@pytest.fixture
def reconciler(exchange: ScriptedExchange, journal: Journal, tracker: OrderTracker) -> Reconciler:
    return Reconciler(exchange, journal, tracker, [BTC], GRACE_S, trade_margin_s=1.0)  # type: ignore[arg-type]


async def test_positions_replace_belief_and_each_difference_is_reported(
    exchange: ScriptedExchange, reconciler: Reconciler, tracker: OrderTracker
) -> None:
    exchange.position_sizes = {1: Decimal("0.0004")}
    first = await reconciler.run_once("startup")
    assert first.position_changes == ["BTC believed 0, exchange 0.0004"]
    assert reconciler.positions[1].size == Decimal("0.0004")
    # The stream believed something else meanwhile; the exchange's answer wins.
    tracker.positions[0] = PositionSnapshot(ACCOUNT, 0, Decimal("1"), Decimal(0), Decimal(0), Decimal(0))
    exchange.position_sizes = {1: Decimal("-0.0002")}
    second = await reconciler.run_once("periodic")
    assert second.position_changes == [
        "market 0 believed 1, exchange 0",
        "BTC believed 0.0004, exchange -0.0002",
    ]
    assert set(reconciler.positions) == {1}
    assert (await reconciler.run_once("periodic")).position_changes == []


async def test_unresolved_orders_resolved_by_client_index(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal
) -> None:
    await record(journal, 1)  # pending submit, on the exchange
    await record(journal, 2, age_s=60)
    journal.transition(2, OrderState.UNKNOWN)  # ambiguous send, filled meanwhile
    await record(journal, 3)  # not found, just created: grace
    await record(journal, 4, age_s=60)  # not found, long ago: never arrived
    await record(
        journal, 5, age_s=60, sent_age_s=1
    )  # created long ago but sent just now: grace from the send
    await record(journal, 6, age_s=60, sent_age_s=60)
    journal.transition(6, OrderState.UNKNOWN)
    exchange.orders = {1: update(1, VenueState.LIVE), 2: update(2, VenueState.FILLED, filled="0.0004")}

    report = await reconciler.run_once("startup")

    assert report.complete
    states = {c: journal.get(c).state for c in range(1, 7)}
    assert states == {
        1: OrderState.OPEN,
        2: OrderState.FILLED,
        3: OrderState.PENDING_SUBMIT,
        4: OrderState.REJECTED,
        5: OrderState.PENDING_SUBMIT,
        6: OrderState.REJECTED,
    }
    assert journal.get(4).reason == NEVER_REACHED
    assert sorted(report.within_grace) == [3, 5]
    assert sorted(report.rejected) == [4, 6]
    assert report.resolved == {1: OrderState.OPEN, 2: OrderState.FILLED, 4: OrderState.REJECTED,
                               6: OrderState.REJECTED}  # fmt: skip
    assert report.orphans == []


async def test_an_unsent_order_of_this_process_is_a_send_in_flight(
    exchange: ScriptedExchange, journal: Journal, tracker: OrderTracker
) -> None:
    impatient = Reconciler(exchange, journal, tracker, [BTC], 0.0)  # type: ignore[arg-type]
    await record(journal, 14)  # written after the reconciler started, never marked sent
    report = await impatient.run_once("periodic")
    assert report.within_grace == [14] and report.rejected == []  # past a zero grace, yet not decided
    assert journal.get(14).state is OrderState.PENDING_SUBMIT
    journal.mark_sent(14, now_ms() - 1_000)  # once it is marked sent, the grace rule applies
    assert (await impatient.run_once("periodic")).rejected == [14]


async def test_missed_fills_recovered_once_and_watermark_persisted(
    exchange: ScriptedExchange,
    reconciler: Reconciler,
    journal: Journal,
    tracker: OrderTracker,
    told: Announcements,
) -> None:
    order = await record(journal, 7, sent_age_s=0)
    await reconciler.run_once("startup")
    assert exchange.trade_queries == [order.created_ms - 1000]
    watermark = int(journal.get_meta(WATERMARK_KEY))
    # One fill arrives on the stream, one is lost in a gap.
    exchange.trades = [trade(70, 7, now_ms()), trade(71, 7, now_ms())]
    assert await tracker.ingest_fill(exchange.trades[0], source="ws")
    exchange.orders = {7: update(7, VenueState.FILLED, filled="0.0004")}

    report = await reconciler.run_once("reconnect")
    again = await reconciler.run_once("periodic")

    assert report.recovered_fills == [71]
    assert again.recovered_fills == []
    assert told.trade_ids == [70, 71]
    assert exchange.trade_queries[1] == watermark - 1000
    assert int(journal.get_meta(WATERMARK_KEY)) >= watermark
    assert journal.get(7).state is OrderState.FILLED
    assert journal.fills_total(7) == Decimal("0.0004")


async def test_fresh_journal_does_not_adopt_older_trades(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, told: Announcements
) -> None:
    exchange.trades = [trade(1, 999, now_ms() - 5_000)]  # made before this journal existed
    report = await reconciler.run_once("startup")
    assert report.recovered_fills == []
    assert exchange.trade_queries == []
    assert journal.get_meta(WATERMARK_KEY) is not None
    assert told.trade_ids == []


async def test_a_failed_lookup_decides_nothing(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal
) -> None:
    await record(journal, 8, age_s=60)
    exchange.failing = {"orders", "positions"}
    report = await reconciler.run_once("periodic")
    assert not report.complete
    assert len(report.errors) == 2
    assert journal.get(8).state is OrderState.PENDING_SUBMIT  # not REJECTED for lack of an answer
    assert journal.get_meta(WATERMARK_KEY) is not None  # the other steps still ran
    exchange.failing = set()
    assert (await reconciler.run_once("periodic")).rejected == [8]


async def test_orphans_reported(exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal) -> None:
    await record(journal, 9, age_s=60)
    journal.transition(9, OrderState.CANCELED, reason="canceled_by_us")
    exchange.orders = {9: update(9, VenueState.LIVE), 10: update(10, VenueState.LIVE)}
    report = await reconciler.run_once("periodic")
    assert sorted(report.orphans) == [9, 10]  # ended per the journal, and unknown to it
    assert journal.get(9).state is OrderState.CANCELED
    # One the journal has REJECTED executed late: it is taken, not an orphan (test_late_execution.py)


async def test_confirm_final_uses_stream_events_first(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, events: asyncio.Queue[Event]
) -> None:
    await record(journal, 11, sent_age_s=0)
    journal.transition(11, OrderState.OPEN)
    confirming = asyncio.create_task(reconciler.confirm_final(11, timeout=5))
    events.put_nowait(update(11, VenueState.CANCELED, EndReason.CANCELED_BY_US, filled="0.0002"))
    events.put_nowait(trade(110, 11, now_ms()))  # the fill that raced the cancel
    order = await confirming
    assert (order.state, order.filled_size) == (OrderState.CANCELED, Decimal("0.0002"))
    assert journal.fills_total(11) == Decimal("0.0002")
    assert exchange.lookups == []  # the stream sufficed


async def test_confirm_final_falls_back_to_rest_when_the_stream_is_silent(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, told: Announcements
) -> None:
    await record(journal, 12, sent_age_s=0)
    journal.transition(12, OrderState.OPEN)
    exchange.orders = {12: update(12, VenueState.CANCELED, EndReason.CANCELED_BY_US, filled="0.0002")}
    exchange.trades = [trade(120, 12, now_ms()), trade(121, 99, now_ms())]
    order = await reconciler.confirm_final(12, timeout=0.4)
    assert (order.state, order.filled_size) == (OrderState.CANCELED, Decimal("0.0002"))
    assert [f.trade_id for f in journal.fills_for(12)] == [120]
    assert told.trade_ids == [120]  # the other order's trade is not this call's business
    assert exchange.lookups == [[12]]


async def test_confirm_final_returns_a_live_order_when_time_runs_out(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal
) -> None:
    await record(journal, 13, sent_age_s=0)
    exchange.orders = {13: update(13, VenueState.LIVE)}
    order = await reconciler.confirm_final(13, timeout=0.3)
    assert order.state is OrderState.OPEN
    assert len(exchange.lookups) >= 1
    with pytest.raises(KeyError):
        await reconciler.confirm_final(404, timeout=0.1)


async def test_a_check_of_a_live_order_finds_its_fill_once_whichever_path_comes_second(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, tracker: OrderTracker,
    told: Announcements,
) -> None:
    await record(journal, 15, sent_age_s=0)
    journal.transition(15, OrderState.OPEN)
    exchange.orders = {15: update(15, VenueState.LIVE, filled="0.0002")}  # what the silent stream missed
    exchange.trades = [trade(150, 15, now_ms()), trade(151, 99, now_ms())]

    assert [f.trade_id for f in await reconciler.check_order(15)] == [150]  # one lookup, then its trades
    assert exchange.lookups == [[15]] and len(exchange.trade_queries) == 1
    assert told.trade_ids == [150]  # announced, as a streamed fill is; the other order's trade is not ours
    assert (journal.get(15).state, journal.get(15).filled_size) == (OrderState.PARTIALLY_FILLED,
                                                                     Decimal("0.0002"))
    assert not await tracker.ingest_fill(trade(150, 15, now_ms()), source="ws")  # the stream, late: dropped
    assert await reconciler.check_order(15) == []  # nothing new: no trades read
    assert len(exchange.trade_queries) == 1 and told.trade_ids == [150]


async def test_an_order_whose_send_had_no_verdict_is_found_filled_by_a_check_and_its_fill_told_once(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, told: Announcements,
    events: asyncio.Queue[Event],
) -> None:
    # A's create written to a silent account stream, unanswered: the exchange placed and filled it meanwhile.
    await record(journal, 16, sent_age_s=1)
    journal.transition(16, OrderState.UNKNOWN)
    exchange.orders = {16: update(16, VenueState.FILLED, filled="0.0004")}
    exchange.trades = [trade(160, 16, now_ms(), size="0.0004")]

    assert [f.trade_id for f in await reconciler.check_order(16)] == [160]  # A's lookup (maker_unsettled)
    assert (journal.get(16).state, journal.fills_total(16)) == (OrderState.FILLED, Decimal("0.0004"))
    assert told.trade_ids == [160] and await told.arrived.get() == 160

    # The stream, back after the silence, reports the same order and fill: nothing is told twice. Another
    # order's fill, streamed after them, shows the tracker has read them.
    await record(journal, 17, sent_age_s=0)
    journal.transition(17, OrderState.OPEN)
    events.put_nowait(update(16, VenueState.FILLED, filled="0.0004"))
    events.put_nowait(trade(160, 16, now_ms(), size="0.0004"))
    events.put_nowait(trade(170, 17, now_ms()))
    assert await asyncio.wait_for(told.arrived.get(), 5) == 170
    assert told.trade_ids == [160, 170]
    assert journal.fills_total(16) == Decimal("0.0004")


async def test_driver_runs_at_once_after_a_reconnect(
    exchange: ScriptedExchange, reconciler: Reconciler, events: asyncio.Queue[Event]
) -> None:
    driver = asyncio.create_task(reconciler.run(interval_s=60))
    try:
        report = asyncio.create_task(reconciler.next_report(timeout=2))
        events.put_nowait(StreamUp(ACCOUNT, reconnect=True))
        assert (await report).reason == "reconnect"
    finally:
        driver.cancel()


async def test_a_reconnect_during_a_run_triggers_another(
    exchange: ScriptedExchange, reconciler: Reconciler, tracker: OrderTracker, events: asyncio.Queue[Event]
) -> None:
    exchange.positions_gate = asyncio.Event()
    driver = asyncio.create_task(reconciler.run(interval_s=60))
    try:
        first = asyncio.create_task(reconciler.next_report(timeout=5))
        events.put_nowait(StreamUp(ACCOUNT, reconnect=True))
        await asyncio.wait_for(exchange.positions_entered.wait(), 2)  # the first run is under way...
        events.put_nowait(StreamUp(ACCOUNT, reconnect=True))  # ...when the link drops again
        await tracker.wait_reconnect(1, timeout=2)
        exchange.positions_gate.set()
        assert (await first).reason == "reconnect"
        async with asyncio.timeout(2):  # not 60 s later: the second reconnect counts
            while reconciler.completed_runs < 2:
                await reconciler.next_report(timeout=2)
        assert reconciler.last_report is not None and reconciler.last_report.reason == "reconnect"
    finally:
        driver.cancel()


async def test_driver_runs_every_interval(reconciler: Reconciler) -> None:
    driver = asyncio.create_task(reconciler.run(interval_s=0.05))
    try:
        first = await reconciler.next_report(timeout=2)
        second = await reconciler.next_report(timeout=2)
        assert (first.reason, second.reason) == ("periodic", "periodic")
        assert second.started_ms >= first.finished_ms
    finally:
        driver.cancel()


async def test_fill_prices_under_a_burst_of_429s_prices_from_what_the_stream_gave(
    exchange: ScriptedExchange, reconciler: Reconciler, journal: Journal, tracker: OrderTracker,
) -> None:
    """The outcome's prices never raise (issue 9's `http_429_burst`): the trades read refused, the fills the
    stream brought keep their prices and what the exchange says filled beyond them is priced at the limit."""
    orders = OrderExecutor(exchange, journal, tracker, reconciler, name="B",  # type: ignore[arg-type]
                           events=RoleEvents(NO_EVENTS, "b"), metrics=HedgeMetrics("t", "b", enabled=False),
                           request_timeout_s=1.0, unknown_grace_s=GRACE_S)
    order = await record(journal, 16, sent_age_s=0)
    await tracker.ingest_fill(trade(160, 16, now_ms(), size="0.0001"), source="ws")
    journal.apply_order_update(update(16, VenueState.FILLED, filled="0.0004"))  # 0.0003 more than streamed
    refused: list[int] = []

    async def rate_limited(since_ms: int, market: MarketInfo | None = None) -> list[Fill]:
        refused.append(since_ms)
        raise VenueError("trades", "too many requests", 429, 23000)

    exchange.trades_since = rate_limited  # type: ignore[method-assign]

    prices = await orders.fill_prices([order])

    assert refused  # it asked, and was refused
    assert prices == [(Decimal("0.0001"), Decimal("95000.0")), (Decimal("0.0003"), order.price)]
