"""B's hedge through transport trouble, end to end: the simulator's faults, the real adapter and lighter-sdk,
B's runtime driven one batch at a time (`Hedger.handle`), sending over HTTP so the HTTP faults reach sendTx
(and over the WebSocket, its default, where a test says so).

A burst of 429s, a sendTx answered 500 without being handled, and one executed but never answered (over HTTP
or the WebSocket) are transport events: none of them fails the hedge or uses up a price attempt, and the venue
ends up with exactly one order of the hedge. An IOC the sequencer refuses after the API accepted it is settled
by the sequencer's verdict (streamed, or read by its hash, also when its send was never answered: the hash is
the signer's), not after the grace, and the next price attempt fills. What is
asserted is what happened (orders at the venue, attempts, outcome, reasons), never how long it took:
`bench/` measures speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hedge_strategy.bus import FILLED, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.exchange import Purpose, Role, make_coid
from hedge_strategy.exchange.events import SEQUENCER_REFUSED
from hedge_strategy.execution import NEVER_REACHED, OrderState
from hedge_strategy.hedger import Hedger, hedge_coid
from hedge_strategy.runtime import Runtime, open_runtime
from tests.fixtures.ab import AB, B_ACCOUNT, BTC, ABFactory

SEND_TX = "/api/v1/sendTx"
SIZE = Decimal("0.0002")


async def b_runtime(ab_factory: ABFactory, over_websocket: bool) -> AsyncIterator[tuple[AB, Runtime]]:
    """The A/B kit and B's runtime (tracking, reconciled), sending its transactions as told."""
    ab = await ab_factory()
    config = replace(ab.config, exchange=replace(ab.config.exchange, send_over_websocket=over_websocket))
    rt = await open_runtime(config, "b", ab.events)
    try:
        await rt.start_tracking()
        await rt.bus.ensure_group()
        yield ab, rt
    finally:
        await rt.close()


@pytest.fixture
async def b_over_http(ab_factory: ABFactory) -> AsyncIterator[tuple[AB, Runtime]]:
    async for kit in b_runtime(ab_factory, over_websocket=False):
        yield kit


@pytest.fixture
async def b_over_ws(ab_factory: ABFactory) -> AsyncIterator[tuple[AB, Runtime]]:
    async for kit in b_runtime(ab_factory, over_websocket=True):
        yield kit


async def blackholed(ab: AB) -> list[dict[str, Any]]:
    """B's transactions the simulator executed and never answered (fault blackhole_next_sendtx)."""
    return [tx for tx in (await ab.sim.txlog(B_ACCOUNT))[str(B_ACCOUNT)] if "blackholed" in tx["message"]]


async def hedge_one(ab: AB, rt: Runtime, sequence: int) -> tuple[HedgeRequest, HedgeOutcome]:
    """A residual sell of `SIZE` published, read and handled by B; its outcome."""
    request = HedgeRequest.for_residual(pair=ab.config.pair, market="BTC", market_id=BTC, side="sell",
                                        size=SIZE, a_client_order_index=make_coid(Role.A, Purpose.REBALANCE,
                                                                                  sequence),
                                        seen_ts_ms=now_ms())
    await ab.bus.publish_request(request)
    hedger = Hedger(rt)
    await hedger.handle(await rt.bus.read_requests(hedger.consumer, count=10, block_ms=1000))
    return request, (await ab.bus.get_outcomes([request.request_id]))[request.request_id]


@pytest.mark.parametrize("paths", [[SEND_TX], None], ids=["sendTx", "every REST path"])
async def test_a_burst_of_40_429s_never_fails_the_hedge(b_over_http: tuple[AB, Runtime],
                                                        paths: list[str] | None) -> None:
    ab, rt = b_over_http
    # Retry-After keeps the test short: without it the same retries wait out jittered backoffs (unit tests).
    # On every path (chaos `http_429_burst`) B's reads meet them too (lookups, trades, the book).
    await ab.sim.faults(http_error_next=40, status=429, paths=paths, retry_after_s=0.05)
    request, outcome = await hedge_one(ab, rt, 1)

    assert outcome.status == FILLED and outcome.filled_size == SIZE and outcome.reason is None
    attempts = ab.events.matching("b", "hedge_attempt", request_ids=(request.request_id,))
    assert len(attempts) >= 2 and {e.attempt for e in attempts} == {1}  # re-sent, no price attempt used
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # only the send that got through reached the venue
    faults = (await ab.sim.admin("GET", "/sim/faults"))["faults"]
    assert faults["http_error_next"] is None  # all 40 were answered
    assert await ab.position(B_ACCOUNT) == -SIZE


async def test_a_send_answered_500_and_never_handled_is_sent_again_once_not_found(
        b_over_http: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_http
    await ab.sim.faults(http_error_next=1, status=500, paths=[SEND_TX])  # answered 500, nothing handled
    request, outcome = await hedge_one(ab, rt, 2)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    first, again = hedge_coid(request.request_id, 1), hedge_coid(request.request_id, 1, 1)
    assert outcome.hedge_client_order_indexes == (first, again)
    lost = rt.orders.order(first)
    assert lost is not None and (lost.state, lost.reason) == (OrderState.REJECTED, NEVER_REACHED)
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # the venue had only the re-send
    assert await ab.position(B_ACCOUNT) == -SIZE
    assert {e.attempt for e in ab.events.matching("b", "hedge_attempt", request_ids=(request.request_id,))
            } == {1}


async def test_a_send_executed_but_never_answered_is_settled_by_its_client_order_index(
        b_over_http: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_http
    # Executed, its answer never comes, and the stream is silent (its frames lost): only a lookup by client
    # order index over REST can tell what became of it.
    await ab.sim.faults(blackhole_next_sendtx=1, account_index=B_ACCOUNT, silence_ws_s=60)
    request, outcome = await hedge_one(ab, rt, 3)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    coid = hedge_coid(request.request_id, 1)
    assert outcome.hedge_client_order_indexes == (coid,)  # never sent twice
    (sent,) = ab.events.matching("b", "hedge_attempt", request_ids=(request.request_id,))
    assert sent.state == "unknown"  # the send had no answer; its order was found and settled
    assert [f.source for f in rt.orders.journal.fills_for(coid)] != ["ws"]  # learned over REST
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
    assert await ab.position(B_ACCOUNT) == -SIZE


async def test_over_the_websocket_a_send_executed_but_never_answered_is_settled_without_a_second_order(
        b_over_ws: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_ws
    # The WebSocket sendtx executes and no answer frame ever comes; the stream still runs.
    await ab.sim.faults(blackhole_next_sendtx=1, account_index=B_ACCOUNT)
    request, outcome = await hedge_one(ab, rt, 6)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    coid = hedge_coid(request.request_id, 1)
    assert outcome.hedge_client_order_indexes == (coid,)  # never sent twice
    (sent,) = ab.events.matching("b", "hedge_attempt", request_ids=(request.request_id,))
    assert sent.state == "unknown"  # the send had no answer
    (swallowed,) = await blackholed(ab)
    assert swallowed["tx_hash"] == rt.orders.tracker.txs.hash_of(coid)  # the signer's hash, kept by B
    assert len(await ab.create_orders(B_ACCOUNT)) == 1
    assert await ab.position(B_ACCOUNT) == -SIZE


async def test_an_unanswered_ioc_the_sequencer_refused_is_settled_by_its_hash(
        b_over_http: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_http
    # Never answered (B keeps the hash its signer returned), refused by the sequencer, and the stream silent
    # (its account_tx frame lost): only the transaction read by that hash tells the refusal.
    await ab.sim.faults(blackhole_next_sendtx=1, silence_ws_s=60, account_index=B_ACCOUNT,
                        sequencer_reject_next={"count": 1, "account_index": B_ACCOUNT})
    request, outcome = await hedge_one(ab, rt, 7)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    first = hedge_coid(request.request_id, 1)
    assert len(await blackholed(ab)) == 1
    refused = rt.orders.order(first)
    # Settled by the verdict, not by the grace (whose reason would be NEVER_REACHED).
    assert refused is not None and refused.state is OrderState.REJECTED
    assert refused.reason is not None and refused.reason.startswith(f"{SEQUENCER_REFUSED}: 29500 ")
    assert len(await ab.create_orders(B_ACCOUNT)) == 2  # the refused one, then the next attempt's
    assert await ab.position(B_ACCOUNT) == -SIZE


async def test_an_ioc_the_sequencer_refuses_is_settled_by_its_verdict_and_the_next_attempt_fills(
        b_over_http: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_http
    # Answered 200, then refused by the sequencer, its nonce given back: the account_tx frame says so.
    await ab.sim.faults(sequencer_reject_next={"count": 1, "account_index": B_ACCOUNT,
                                               "consume_nonce": False})
    request, outcome = await hedge_one(ab, rt, 4)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    first, second = hedge_coid(request.request_id, 1), hedge_coid(request.request_id, 2)
    assert outcome.hedge_client_order_indexes == (first, second)  # the refusal used up price attempt 1
    refused = rt.orders.order(first)
    # Settled by the sequencer's verdict, not by the grace (whose reason would be "accepted, never executed").
    assert refused is not None and refused.state is OrderState.REJECTED
    assert refused.reason is not None and refused.reason.startswith(f"{SEQUENCER_REFUSED}: 29500 ")
    (ended,) = ab.events.matching("b", "order_ended", coid=first)
    assert ended.reason == refused.reason
    creates = await ab.create_orders(B_ACCOUNT)
    assert [r["executed_us"] is None for r in creates] == [True, False]  # the venue executed only the second
    assert "rejected by the sequencer" in creates[0]["message"]
    assert await ab.position(B_ACCOUNT) == -SIZE


async def test_a_refusal_the_stream_missed_is_read_by_hash_when_the_order_is_not_found(
        b_over_http: tuple[AB, Runtime]) -> None:
    ab, rt = b_over_http
    # B's stream is silent: its account_tx frame is lost. The lookup by client order index finds nothing,
    # then the transaction read by its hash tells the refusal.
    await ab.sim.faults(sequencer_reject_next={"count": 1, "account_index": B_ACCOUNT}, silence_ws_s=60,
                        account_index=B_ACCOUNT)
    request, outcome = await hedge_one(ab, rt, 5)

    assert outcome.status == FILLED and outcome.filled_size == SIZE
    first = hedge_coid(request.request_id, 1)
    refused = rt.orders.order(first)
    assert refused is not None and refused.state is OrderState.REJECTED
    assert refused.reason is not None and refused.reason.startswith(f"{SEQUENCER_REFUSED}: 29500 ")
    assert len(await ab.create_orders(B_ACCOUNT)) == 2
    assert await ab.position(B_ACCOUNT) == -SIZE
