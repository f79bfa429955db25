"""A's maker price is read when the order leaves (issue 10): after the send's turn and the throttle's wait,
right before signing; the journal holds the price actually sent. The real adapter, signer and journal
against the simulator; the throttle's budget is gated by the test, standing for a wait on Standard.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from hedge_strategy.exchange import LighterAccount, Purpose, Role, SendStatus, Side, make_coid
from hedge_strategy.execution import Intent, Journal, OrderKind, OrderSpec, OrderTracker, Reconciler
from hedge_strategy.execution.orders import OrderExecutor
from hedge_strategy.observe import NO_EVENTS, HedgeMetrics, RoleEvents
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import Opener, open_account

__all__ = ["open_account"]

WAIT_S = 5.0
SIZE = Decimal("0.0002")


class GatedBudget:
    """The throttle's budget, held shut by the test: each take waits until `gate` opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()  # a take is waiting at the gate
        self.takes = 0

    async def take(self, amount: float) -> float:
        self.takes += 1
        self.waiting.set()
        await self.gate.wait()
        return 0.0


async def executor_on(account: LighterAccount, tmp_path: Path) -> OrderExecutor:
    journal = await Journal.open(tmp_path / "journal.sqlite", account.account_index)
    tracker = OrderTracker(journal, account.subscribe())
    reconciler = Reconciler(account, journal, tracker, [account.market("BTC")], 5.0)
    return OrderExecutor(account, journal, tracker, reconciler, name="A",
                         events=RoleEvents(NO_EVENTS, "a"), metrics=HedgeMetrics("t", "a", enabled=False),
                         request_timeout_s=5.0, unknown_grace_s=5.0)


async def test_the_price_is_read_after_the_throttles_wait_and_journaled_as_sent(
        sim: SimProcess, open_account: Opener, tmp_path: Path) -> None:
    account, _ = await open_account(sim, books=())
    executor = await executor_on(account, tmp_path)
    btc = account.market("BTC")
    budget = GatedBudget()
    account.throttle.budget = budget
    book = {"bid": Decimal("90000.0")}  # what the stream's book says at depth N, moved by the test
    read: list[Decimal] = []

    def price_at_send() -> Decimal | None:
        read.append(book["bid"])
        return book["bid"]

    coid = make_coid(Role.A, Purpose.MAKER, 1)
    sending = asyncio.ensure_future(executor.submit(
        OrderSpec(coid, Intent.MAKER, btc, Side.BUY, SIZE, price_at_send, OrderKind.POST_ONLY)))
    await asyncio.wait_for(budget.waiting.wait(), WAIT_S)
    assert read == []  # held by the throttle: not priced yet
    assert executor.journal.get(coid) is None  # nor recorded: the record holds the price sent
    book["bid"] = Decimal("90010.0")  # the touch moves while the order waits
    budget.gate.set()
    sent = await asyncio.wait_for(sending, WAIT_S)

    assert sent.status is SendStatus.ACCEPTED
    assert read == [Decimal("90010.0")]  # read once, after the wait
    assert budget.takes == 1
    recorded = executor.journal.get(coid)
    assert recorded is not None and recorded.price == Decimal("90010.0")
    at_exchange = (await account.orders_by_client_index([coid]))[coid]
    assert at_exchange.price == Decimal("90010.0")
    await executor.journal.close()


async def test_no_price_at_departure_gives_the_order_up_unrecorded_and_unsent(
        sim: SimProcess, open_account: Opener, tmp_path: Path) -> None:
    account, _ = await open_account(sim, books=())
    executor = await executor_on(account, tmp_path)
    coid = make_coid(Role.A, Purpose.MAKER, 1)

    sent = await executor.submit(OrderSpec(coid, Intent.MAKER, account.market("BTC"), Side.BUY, SIZE,
                                           lambda: None, OrderKind.POST_ONLY))

    assert sent.status is SendStatus.REJECTED and "not sent" in sent.detail
    assert executor.journal.get(coid) is None
    assert sum(len(txs) for txs in (await sim.txlog(101)).values()) == 0  # the exchange saw nothing
    await executor.journal.close()
