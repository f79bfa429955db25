"""A resting order re-priced in place by one ModifyOrder (tx type 17) through the one execution path
(`OrderExecutor.modify`): priced at departure, its new price written ahead of the send (journal, then the
announcement), the order's price taken from the exchange's order update. The real adapter, signer, journal
and tracker against the simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from hedge_strategy.exchange import LighterAccount, Purpose, Role, SendStatus, Side, make_coid
from hedge_strategy.execution import Intent, OrderKind, OrderSpec, OrderState
from hedge_strategy.execution.orders import OrderExecutor
from tests.fixtures.sim import SimProcess
from tests.test_exchange_departure import executor_on
from tests.test_exchange_simkit import Opener, open_account

__all__ = ["open_account"]

WAIT_S = 10.0
SIZE = Decimal("0.0002")
OLD, NEW = Decimal("90000.0"), Decimal("90010.0")
COID = make_coid(Role.A, Purpose.MAKER, 1)


async def modifies(sim: SimProcess, account_index: int = 101) -> list[dict[str, Any]]:
    """The simulator's record of the account's ModifyOrder transactions."""
    return [tx for txs in (await sim.txlog(account_index)).values() for tx in txs if tx["tx_type"] == 17]


async def resting_buy(account: LighterAccount, tmp_path: Path) -> OrderExecutor:
    executor = await executor_on(account, tmp_path)
    await executor.tracker.start()
    sent = await executor.submit(OrderSpec(COID, Intent.MAKER, account.market("BTC"), Side.BUY, SIZE, OLD,
                                           OrderKind.POST_ONLY))
    assert sent.status is SendStatus.ACCEPTED
    await executor.tracker.wait_for(lambda: sent.order.state is OrderState.OPEN, WAIT_S)
    return executor


async def test_a_modify_is_written_ahead_sent_once_and_its_price_taken_from_the_exchange(
        sim: SimProcess, open_account: Opener, tmp_path: Path) -> None:
    account, _ = await open_account(sim, books=())
    executor = await resting_buy(account, tmp_path)
    seen_before_send: list[tuple[Decimal | None, int]] = []

    async def announce(price: Decimal) -> None:  # runs before the post: what is recorded, what was sent
        order = executor.journal.get(COID)
        seen_before_send.append((order.modify_price if order else None, len(await modifies(sim))))

    result = await executor.modify(account.market("BTC"), COID, lambda: NEW, "the book moved",
                                   announce=announce)

    assert result.status is SendStatus.ACCEPTED
    assert seen_before_send == [(NEW, 0)]  # the journal had the new price, the exchange no modify yet
    order = await executor.wait_modified(COID, WAIT_S)
    assert (order.price, order.modify_price, order.state) == (NEW, None, OrderState.OPEN)
    (modify,) = await modifies(sim)
    assert modify["status"] == "accepted"
    at_exchange = (await account.orders_by_client_index([COID]))[COID]  # found by its client order index
    assert (at_exchange.price, at_exchange.order_index) == (NEW, order.order_index)  # the same order
    await executor.tracker.stop()
    await executor.journal.close()


@pytest.mark.parametrize("meanwhile", ["redis down", "a fill"])
async def test_no_modify_is_sent_when_its_announcement_fails_or_a_fill_came_first(
        sim: SimProcess, open_account: Opener, tmp_path: Path, meanwhile: str) -> None:
    # A fill the journal learns of while the announcement is in flight: its hedge request may have gone out
    # naming the order at its old price only, and a modify sent after it would move the remainder past B's
    # bound (a wash trade).
    account, _ = await open_account(sim, books=())
    executor = await resting_buy(account, tmp_path)

    async def announce(price: Decimal) -> None:
        if meanwhile == "redis down":
            raise RedisConnectionError("Redis did not answer")
        order = executor.journal.get(COID)
        assert order is not None
        order.filled_size = SIZE / 2

    result = await executor.modify(account.market("BTC"), COID, lambda: NEW, "the book moved",
                                   announce=announce)

    assert result.status is SendStatus.REJECTED and "not sent" in result.detail
    order = executor.journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (OLD, None)
    assert await modifies(sim) == []
    await executor.tracker.stop()
    await executor.journal.close()


async def test_a_modify_refused_at_sendtx_leaves_the_order_where_the_exchange_has_it(
        sim: SimProcess, open_account: Opener, tmp_path: Path) -> None:
    account, _ = await open_account(sim, books=())
    executor = await resting_buy(account, tmp_path)
    await executor.tracker.stop()  # the journal does not hear of the cancel below: it still holds it open
    assert (await account.cancel(account.market("BTC"), COID)).accepted
    await account.orders_by_client_index([COID])  # the cancel has executed (no speed bump in this sim)

    result = await executor.modify(account.market("BTC"), COID, lambda: NEW, "the book moved")

    assert result.status is SendStatus.REJECTED  # the simulator: order not found
    order = executor.journal.get(COID)
    assert order is not None and (order.price, order.modify_price) == (OLD, None)
    await executor.journal.close()


async def test_a_modify_given_up_at_departure_sends_and_records_nothing(
        sim: SimProcess, open_account: Opener, tmp_path: Path) -> None:
    account, _ = await open_account(sim, books=())
    executor = await resting_buy(account, tmp_path)

    result = await asyncio.wait_for(
        executor.modify(account.market("BTC"), COID, lambda: None, "the book moved"), WAIT_S)

    assert result.status is SendStatus.REJECTED and "not sent" in result.detail
    assert executor.journal.get(COID).modify_price is None  # type: ignore[union-attr]
    assert await modifies(sim) == []
    await executor.tracker.stop()
    await executor.journal.close()

