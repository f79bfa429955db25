"""Integration: cancels racing fills, nonce desync and 429 bursts; the journal checked against the exchange.

Simulator + real adapter + real lighter-sdk; each test ends with the journal and the exchange agreeing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hedge_strategy.exchange import EndReason, Purpose, Role, Side, make_coid
from hedge_strategy.execution.journal import OrderState
from tests.fixtures.sim import SimFactory
from tests.test_recovery_kit import SIM_OVERRIDES, NodeOpener, assert_agrees, open_node, wait_state

__all__ = ["open_node"]  # the fixture, imported for pytest

# The exchange takes 300 ms to execute a cancel (a speed bump), so a taker arriving with the cancel wins.
SLOW_CANCELS: dict[str, Any] = {
    **SIM_OVERRIDES,
    "speed_bumps": {"enabled": True, "premium": {"maker_ms": 0, "cancel_ms": 300, "taker_ms": 0}},
}


async def test_cancel_racing_a_fill(sim_factory: SimFactory, open_node: NodeOpener) -> None:
    sim = await sim_factory(SLOW_CANCELS)
    node = await open_node(sim)
    await node.reconciler.run_once("startup")

    # Healthy stream: the cancel's final state and the racing fill both arrive as events.
    coid = await node.place(40, Side.BUY, "0.0004", "94000.0")
    await wait_state(node, coid, OrderState.OPEN)
    cancel, raced = await asyncio.gather(
        node.account.cancel(node.btc, coid), sim.trade(market_id=1, side="sell", size="0.0002")
    )
    assert cancel.accepted and raced
    order = await node.reconciler.confirm_final(coid, timeout=3)
    assert (order.state, order.end_reason, order.filled_size) == (
        OrderState.CANCELED,
        EndReason.CANCELED_BY_US,
        Decimal("0.0002"),
    )
    assert [f.trade_id for f in node.journal.fills_for(coid)] == [raced[0]["trade_id"]]

    # The same race while the stream hears nothing: confirm_final must get both from REST.
    quiet = await node.place(41, Side.BUY, "0.0004", "94000.0")
    await wait_state(node, quiet, OrderState.OPEN)
    await sim.faults(silence_ws_s=1.5)
    cancel, raced_quiet = await asyncio.gather(
        node.account.cancel(node.btc, quiet), sim.trade(market_id=1, side="sell", size="0.0002")
    )
    assert cancel.accepted and raced_quiet
    order = await node.reconciler.confirm_final(quiet, timeout=3)
    assert (order.state, order.filled_size) == (OrderState.CANCELED, Decimal("0.0002"))
    assert [f.trade_id for f in node.journal.fills_for(quiet)] == [raced_quiet[0]["trade_id"]]
    assert node.journal.fills_for(quiet)[0].source == "rest"  # recovered, not streamed

    assert node.told.trade_ids == [raced[0]["trade_id"], raced_quiet[0]["trade_id"]]
    await assert_agrees(node)


async def test_nonce_desync(sim_factory: SimFactory, open_node: NodeOpener) -> None:
    sim = await sim_factory(SIM_OVERRIDES)
    node = await open_node(sim)
    await node.reconciler.run_once("startup")
    # Another client uses the same API key (an operator's script): the adapter's nonce is now stale.
    other = await sim.signer(101)
    foreign = make_coid(Role.OPERATOR, Purpose.MAKER, 1)
    _, answer, error = await other.create_order(
        1, foreign, 20, 930_000, False, other.ORDER_TYPE_LIMIT, other.ORDER_TIME_IN_FORCE_POST_ONLY
    )
    assert error is None and answer.code == 200

    coid = await node.place(50, Side.BUY, "0.0002", "94000.0")  # refused once for the nonce, resent
    await wait_state(node, coid, OrderState.OPEN)
    report = await node.reconciler.run_once("periodic")
    assert report.orphans == [foreign]  # open on the exchange, not ours: reported, left alone
    assert node.order(coid).state is OrderState.OPEN
    filled = await sim.trade(market_id=1, side="sell", size="0.0002")
    assert (await node.told.next()).trade_id == filled[0]["trade_id"]
    await wait_state(node, coid, OrderState.FILLED)
    assert node.told.trade_ids == [filled[0]["trade_id"]]
    await assert_agrees(node)


async def test_429_bursts(sim_factory: SimFactory, open_node: NodeOpener) -> None:
    sim = await sim_factory({**SIM_OVERRIDES, "rate_limits": {"enabled": True}})
    node = await open_node(sim)
    await node.reconciler.run_once("startup")
    stale = await node.record(60, Side.BUY, "0.0002", "93000.0", send=False, age_s=30)  # an old crash's

    coid = await node.record(61, Side.BUY, "0.0004", "94000.0")
    await sim.faults(http_error_next=3, status=429)  # the send is refused three times, then goes through
    result = await node.send(coid)
    assert result.accepted, result
    await wait_state(node, coid, OrderState.OPEN)

    await sim.faults(http_error_next=3, status=429)  # a burst on the reconciliation's reads
    report = await node.reconciler.run_once("periodic")
    assert report.complete, report.errors
    assert report.rejected == [stale]
    filled = await sim.trade(market_id=1, side="sell", size="0.0004")
    await wait_state(node, coid, OrderState.FILLED)
    await node.told.next()

    assert "over its budget" not in sim.log()  # only injected 429s: the client stayed within the sim's limit
    assert node.told.trade_ids == [filled[0]["trade_id"]]
    await assert_agrees(node)
