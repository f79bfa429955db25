"""Integration: HTTP 200 from sendTx means accepted by the API, not executed.

The simulator's `sequencer_reject_next` fault drops an accepted transaction at its execution time, as the
venue's sequencer can (price band, margin; tests/wire/README.md fact 14): no order ever appears, and the
refusal shows only in the account's transactions (`account_tx`, `GET /api/v1/tx`). The stream's verdict
settles such a send at once: REJECTED with the venue's reason, not after the grace. Simulator + real adapter
+ real lighter-sdk.
"""

from __future__ import annotations

import asyncio

from hedge_strategy.exchange import Side
from hedge_strategy.exchange.events import SEQUENCER_REFUSED
from hedge_strategy.execution.journal import OrderState
from tests.fixtures.sim import SimFactory
from tests.test_recovery_kit import (
    ACCOUNT,
    GRACE_S,
    SIM_OVERRIDES,
    NodeOpener,
    assert_agrees,
    open_node,
    wait_state,
)

__all__ = ["open_node"]  # the fixture, imported for pytest


async def test_an_accepted_send_the_sequencer_drops_is_settled_by_its_verdict(
    sim_factory: SimFactory, open_node: NodeOpener
) -> None:
    sim = await sim_factory(SIM_OVERRIDES)
    node = await open_node(sim)
    await node.reconciler.run_once("startup")
    driver = asyncio.create_task(node.reconciler.run(interval_s=3600))  # no periodic run to the rescue
    try:
        for consume_nonce in (True, False):
            await sim.faults(sequencer_reject_next={"count": 1, "account_index": ACCOUNT,
                                                    "consume_nonce": consume_nonce})
            number = 60 if consume_nonce else 61
            dropped = await node.place(number, Side.BUY, "0.0002", "94000.0")  # answered 200: accepted
            assert node.order(dropped).state is OrderState.PENDING_SUBMIT
            # The account_tx frame settles it; the reason says so (the grace path would say "never executed").
            order = await node.tracker.wait_terminal(dropped, timeout=GRACE_S + 1.0 + 5.0)
            assert order.state is OrderState.REJECTED
            assert order.reason is not None and order.reason.startswith(f"{SEQUENCER_REFUSED}: 29500 ")
            assert await node.account.orders_by_client_index([dropped]) == {}

            # The account trades on: the next order rests (the nonce resynced if the drop gave it back).
            coid = await node.place(number + 10, Side.BUY, "0.0002", "94000.0")
            await wait_state(node, coid, OrderState.OPEN)
    finally:
        driver.cancel()
    await assert_agrees(node)
