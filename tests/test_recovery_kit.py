"""Shared pieces of the recovery integration tests (no tests here): one trading "process" against the sim.

A `Node` is what a bot process holds for one account: the real `LighterAccount` (real lighter-sdk) subscribed
before start, the journal file, the tracker consuming the adapter's events and the reconciler. Closing a node
and opening another on the same journal file is how the tests simulate a process restart.

`assert_agrees` is the end condition every recovery test checks: the journal and the exchange agree on
orders' states and filled sizes, on fills by trade id, and on positions; and the strategy was told about
every fill exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedge_strategy.exchange import LighterAccount, MarketInfo, OrderUpdate, Purpose, Role, Side, make_coid
from hedge_strategy.exchange.adapter import SendResult, SendStatus
from hedge_strategy.execution.journal import Intent, Journal, JournalFill, JournalOrder, OrderState, new_order
from hedge_strategy.execution.models import state_for_venue
from hedge_strategy.execution.reconcile import Reconciler
from hedge_strategy.execution.tracker import OrderTracker
from tests.fixtures.sim import SimProcess

ACCOUNT = 101
GRACE_S = 0.5
# The sim pings often, so a healthy but idle stream is never mistaken for a dead one (heartbeat below).
SIM_OVERRIDES: dict[str, Any] = {"websocket": {"ping_interval_s": 0.4, "pong_timeout_s": 5}}
FAST: dict[str, Any] = {
    "request_timeout_s": 1.0,
    "ws_heartbeat_timeout_s": 2.0,
    "ws_backoff_min_s": 0.05,
    "ws_backoff_max_s": 0.3,
    # The simulator pings every 0.4 s here (SIM_OVERRIDES) and a 2 s heartbeat probes a quiet connection every
    # second, far more than the venue's cadence: the WebSocket message budget is raised to answer them all
    # (the budget is tested in test_exchange_ws_budget.py and test_exchange_stream_faults.py).
    "ws_messages_per_minute": 600,
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Told:
    """The strategy's side of `on_fill`: every announcement, in order, plus a queue to wait on."""

    def __init__(self) -> None:
        self.trade_ids: list[int] = []
        self.arrived: asyncio.Queue[JournalFill] = asyncio.Queue()

    async def __call__(self, fill: JournalFill, order: JournalOrder | None) -> None:
        self.trade_ids.append(fill.trade_id)
        self.arrived.put_nowait(fill)

    async def next(self, timeout_s: float = 5.0) -> JournalFill:
        return await asyncio.wait_for(self.arrived.get(), timeout_s)


@dataclass
class Node:
    sim: SimProcess
    account: LighterAccount
    journal: Journal
    tracker: OrderTracker
    reconciler: Reconciler
    told: Told
    placed: list[int] = field(default_factory=list)  # every client order index this test wrote
    closed: bool = False

    @property
    def btc(self) -> MarketInfo:
        return self.account.market("BTC")

    def order(self, coid: int) -> JournalOrder:
        found = self.journal.get(coid)
        assert found is not None, f"{coid} not in the journal"
        return found

    async def record(
        self, number: int, side: Side, size: str, price: str, *, send: bool = True, age_s: float = 0.0
    ) -> int:
        """Write a post-only order to the journal (committed), and mark it sent unless `send` is False.
        `age_s` backdates its creation (an order left behind by an earlier process)."""
        coid = make_coid(Role.A, Purpose.MAKER, number)
        order = new_order(
            client_order_index=coid, account_index=self.account.account_index, market_id=self.btc.market_id,
            intent=Intent.MAKER, side=side, size=Decimal(size), price=Decimal(price), order_type="post_only",
            now_ms=now_ms() - int(age_s * 1000),
        )  # fmt: skip
        await self.journal.record_new(order)
        self.placed.append(coid)
        if send:
            self.journal.mark_sent(coid, now_ms())
        return coid

    async def send(self, coid: int) -> SendResult:
        """Send a recorded post-only order and apply the verdict the way the bot's loops do."""
        order = self.order(coid)
        result = await self.account.place_post_only(self.btc, order.side, order.size, order.price, coid)
        apply_send_result(self.tracker, coid, result)
        return result

    async def place(self, number: int, side: Side, size: str, price: str) -> int:
        coid = await self.record(number, side, size, price)
        result = await self.send(coid)
        assert result.accepted, result
        return coid

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.tracker.stop()
        await self.account.close()
        await self.journal.close()


def apply_send_result(tracker: OrderTracker, coid: int, result: SendResult) -> None:
    """ACCEPTED leaves the state to the exchange's events; the other outcomes are the sender's verdict."""
    if result.status is SendStatus.UNKNOWN:
        tracker.transition(coid, OrderState.UNKNOWN, reason=result.message)
    elif result.status is SendStatus.REJECTED:
        tracker.transition(coid, OrderState.REJECTED, reason=result.detail)


NodeOpener = Callable[..., Awaitable[Node]]


@pytest.fixture
async def open_node(tmp_path: Path) -> AsyncIterator[NodeOpener]:
    """`await open_node(sim, journal_path=None, grace_s=GRACE_S, **LighterAccount overrides)` -> a started
    Node; every node is closed at teardown (closing twice is fine)."""
    nodes: list[Node] = []

    async def opener(
        sim: SimProcess, journal_path: Path | None = None, grace_s: float = GRACE_S, **overrides: Any
    ) -> Node:
        key_index, secret = sim.accounts[ACCOUNT]
        params: dict[str, Any] = {
            "url": sim.url, "ws_url": sim.ws_url, "account_index": ACCOUNT, "api_key_index": key_index,
            "api_secret": secret, **FAST, **overrides,
        }  # fmt: skip
        account = LighterAccount(**params)
        events = account.subscribe()  # before start: the first StreamUp and snapshots are seen too
        await account.start(("BTC",))
        journal = await Journal.open(journal_path or tmp_path / f"journal_{ACCOUNT}.sqlite", ACCOUNT)
        told = Told()
        tracker = OrderTracker(journal, events, on_fill=told)
        await tracker.start()
        markets = [account.market("BTC"), account.market("ETH")]
        reconciler = Reconciler(account, journal, tracker, markets, grace_s, trade_margin_s=5.0)
        node = Node(sim, account, journal, tracker, reconciler, told)
        nodes.append(node)
        return node

    yield opener
    for node in nodes:
        await node.close()


async def wait_state(node: Node, coid: int, *states: OrderState, timeout_s: float = 5.0) -> JournalOrder:
    """The order once the tracker has applied one of `states`."""
    return await node.tracker.wait_for(
        lambda: node.order(coid) if node.order(coid).state in states else None, timeout_s
    )


async def assert_agrees(node: Node, timeout_s: float = 5.0) -> None:
    """The journal and the exchange agree at the end: orders' states and filled sizes, fills by trade id,
    positions, and every fill announced exactly once.

    No reconciliation runs here: the system must have reached agreement by its own means. The exchange is
    read once and the journal is given `timeout_s` to catch up with events still in flight."""
    found = await node.account.orders_by_client_index(node.placed)
    exchange_fills = [f for f in await node.account.trades_since(0) if f.client_order_index in node.placed]
    exchange_positions = {m: p.size for m, p in (await node.account.positions()).items()}

    for coid in node.placed:
        if coid not in found:
            order = node.order(coid)
            assert order.state is OrderState.REJECTED, f"{coid}: {order.state} but unknown to the exchange"
            continue
        update = found[coid]
        mapped = state_for_venue(update.state, update.end_reason, update.filled_size)
        assert mapped is not None, update.venue_status
        await _settle(node, _order_matches(node, coid, update, mapped[0]), timeout_s, f"{coid} vs {update}")

    expected_trades = sorted(f.trade_id for f in exchange_fills)
    await _settle(
        node,
        lambda: sorted(f.trade_id for c in node.placed for f in node.journal.fills_for(c)) == expected_trades,
        timeout_s,
        f"fills {expected_trades}",
    )
    for coid in node.placed:  # each fill matched to the one order the exchange says it belongs to
        assert {f.trade_id for f in exchange_fills if f.client_order_index == coid} == {
            f.trade_id for f in node.journal.fills_for(coid)
        }

    await _settle(
        node,
        lambda: {m: p.size for m, p in node.reconciler.positions.items()} == exchange_positions,
        timeout_s,
        f"positions {exchange_positions} vs belief {node.reconciler.positions}",
    )
    signed: Counter[int] = Counter()
    for fill in exchange_fills:  # no market flow in these tests: every position comes from our own fills
        signed[fill.market_id] += fill.size if fill.side is Side.BUY else -fill.size
    assert {m: s for m, s in signed.items() if s != 0} == exchange_positions

    told = Counter(node.told.trade_ids)
    assert all(n == 1 for n in told.values()), f"announced more than once: {told}"
    assert node.journal.unannounced_fills() == []


def _order_matches(node: Node, coid: int, update: OrderUpdate, state: OrderState) -> Callable[[], bool]:
    def matches() -> bool:
        order = node.order(coid)
        return (
            order.state is state
            and order.filled_size == update.filled_size
            and node.journal.fills_total(coid) == update.filled_size
        )

    return matches


async def _settle(node: Node, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once `condition` holds (re-checked after every applied event); fail after `timeout_s`."""
    try:
        await node.tracker.wait_for(lambda: True if condition() else None, timeout_s)
    except TimeoutError:
        raise AssertionError(f"journal and exchange still disagree after {timeout_s}s: {what}") from None
