"""Integration: a process dying around a send, then a new process resolving its orders from the journal.

Simulator + real adapter + real lighter-sdk. A "process" is a Node (adapter, journal, tracker, reconciler);
it dies by stopping everything without processing another event, and a new Node reopens the journal file.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from hedge_strategy.exchange import Event, OrderUpdate, Side, VenueState
from hedge_strategy.exchange.adapter import SendStatus
from hedge_strategy.execution.journal import OrderState
from hedge_strategy.execution.reconcile import NEVER_REACHED
from tests.fixtures.sim import SimFactory
from tests.test_recovery_kit import SIM_OVERRIDES, Node, NodeOpener, assert_agrees, open_node, wait_state

__all__ = ["open_node"]  # the fixture, imported for pytest


async def kill(node: Node) -> None:
    """The process dies: it stops taking events and talking to the exchange. Its journal keeps only what
    reached disk; closing it here writes nothing new because no event was applied after the stop."""
    await node.tracker.stop()
    await node.close()


async def test_killed_after_the_journal_write_before_the_send(
    sim_factory: SimFactory, open_node: NodeOpener, tmp_path: Path
) -> None:
    sim = await sim_factory(SIM_OVERRIDES)
    path = tmp_path / "journal_a.sqlite"
    first = await open_node(sim, journal_path=path)
    await first.reconciler.run_once("startup")
    coid = await first.record(10, Side.BUY, "0.0002", "94000.0", send=False)
    await kill(first)  # died between the write-ahead record and the send

    second = await open_node(sim, journal_path=path, grace_s=0.5)
    second.placed.append(coid)
    assert second.order(coid).state is OrderState.PENDING_SUBMIT
    report = await second.reconciler.run_once("startup")
    assert report.within_grace == [coid]  # not found yet, but the exchange may lag: not decided
    assert second.order(coid).state is OrderState.PENDING_SUBMIT

    driver = asyncio.create_task(second.reconciler.run(interval_s=0.5))
    try:
        async with asyncio.timeout(10):
            while coid not in (await second.reconciler.next_report(timeout=5)).rejected:
                pass
    finally:
        driver.cancel()
    order = second.order(coid)
    assert (order.state, order.reason) == (OrderState.REJECTED, NEVER_REACHED)
    assert await second.account.orders_by_client_index([coid]) == {}  # nothing on the exchange
    await assert_agrees(second)


async def test_killed_after_the_send_before_the_answer(
    sim_factory: SimFactory, open_node: NodeOpener, tmp_path: Path
) -> None:
    sim = await sim_factory(SIM_OVERRIDES)
    path = tmp_path / "journal_a.sqlite"
    first = await open_node(sim, journal_path=path)
    await first.reconciler.run_once("startup")
    coid = await first.record(20, Side.BUY, "0.0004", "94000.0")
    await first.journal.flush()  # the send time is on disk, as the background writer would have done
    await first.tracker.stop()  # from here on this process applies nothing it hears
    watch = first.account.subscribe()
    await sim.faults(blackhole_next_sendtx=1)
    sending = asyncio.create_task(first.send(coid))
    reached = await _next_update(watch, coid)
    assert reached.state is VenueState.LIVE  # the exchange has the order; the answer never comes
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    await kill(first)
    # While no process runs, half of the order trades.
    while_dead = await sim.trade(market_id=1, side="sell", size="0.0002")

    second = await open_node(sim, journal_path=path)
    second.placed.append(coid)
    # The new stream's snapshots or the start-up reconciliation resolve it, whichever comes first.
    await second.reconciler.run_once("startup")
    assert second.order(coid).state is OrderState.PARTIALLY_FILLED
    assert second.told.trade_ids == [while_dead[0]["trade_id"]]
    # The new process keeps tracking the order from the stream.
    rest = await sim.trade(market_id=1, side="sell", size="0.0002")
    await wait_state(second, coid, OrderState.FILLED)
    assert (await second.told.next()).trade_id == while_dead[0]["trade_id"]
    assert (await second.told.next()).trade_id == rest[0]["trade_id"]
    await assert_agrees(second)


async def test_sendtx_never_answered(sim_factory: SimFactory, open_node: NodeOpener) -> None:
    sim = await sim_factory(SIM_OVERRIDES)
    node = await open_node(sim, request_timeout_s=0.5)
    await node.reconciler.run_once("startup")
    await sim.faults(blackhole_next_sendtx=1)
    coid = await node.record(30, Side.SELL, "0.0002", "96000.0")
    result = await node.send(coid)
    assert result.status is SendStatus.UNKNOWN
    # The stream may already have shown the order (then UNKNOWN was refused); either way it is not REJECTED.
    assert node.order(coid).state in (OrderState.UNKNOWN, OrderState.OPEN)
    report = await node.reconciler.run_once("after an unknown send")
    assert node.order(coid).state is OrderState.OPEN
    assert report.rejected == []
    # The sender resynced its nonce: the next order goes through, and exactly one order exists per index.
    second = await node.place(31, Side.SELL, "0.0002", "96100.0")
    await wait_state(node, second, OrderState.OPEN)
    open_now = [u.client_order_index for u in await node.account.open_orders()]
    assert sorted(open_now) == sorted([coid, second])
    await assert_agrees(node)


async def _next_update(queue: asyncio.Queue[Event], coid: int, timeout_s: float = 5.0) -> OrderUpdate:
    async def scan() -> OrderUpdate:
        while True:
            event = await queue.get()
            if isinstance(event, OrderUpdate) and event.client_order_index == coid:
                return event

    return await asyncio.wait_for(scan(), timeout_s)
