"""Integration: transactions over the account's WebSocket (`jsonapi/sendtx`) against the simulator.

The sender's three outcomes and its nonce discipline hold on the socket as on HTTP; a socket that is down
sends nothing and the transaction goes over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from hedge_strategy.exchange import Event, LighterAccount, SendStatus, Side, VenueState
from hedge_strategy.exchange.ws_budget import BURST
from tests.fixtures.procs import free_port
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import MIN_SIZE, Opener, maker_coid, open_account

__all__ = ["open_account"]

D = Decimal
SIZE = MIN_SIZE
coid = maker_coid


async def sent_over_ws(sim: SimProcess, open_account: Opener,
                       **overrides: object) -> tuple[LighterAccount, asyncio.Queue[Event]]:
    account, events = await open_account(sim, books=(), send_over_websocket=True, **overrides)
    assert account.stream_up
    return account, events


async def silence_over(sim: SimProcess) -> None:
    """Until the simulator's silence fault has run out (its state says how much is left)."""
    while (await sim.admin("GET", "/sim/faults"))["faults"]["silence_ws_s_left"] > 0:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def test_accepted_over_the_socket(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await sent_over_ws(sim, open_account)
    btc = account.market("BTC")
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert result.status is SendStatus.ACCEPTED and result.tx_hash
    assert account.stream_stats()["ws_transactions"] == 1
    assert (await account.orders_by_client_index([coid(1)]))[coid(1)].state is VenueState.LIVE
    cancelled = await account.cancel(btc, coid(1))
    assert cancelled.accepted and account.stream_stats()["ws_transactions"] == 2
    logged = [tx for txs in (await sim.txlog(101)).values() for tx in txs]
    assert any(tx.get("tx_hash") == result.tx_hash for tx in logged)


async def test_refusals_over_the_socket_keep_their_code_and_the_nonce(sim: SimProcess,
                                                                     open_account: Opener) -> None:
    account, _ = await sent_over_ws(sim, open_account)
    btc = account.market("BTC")
    too_small = await account.place_post_only(btc, Side.BUY, D("0.0001"), D("90000.0"), coid(1))
    assert too_small.status is SendStatus.REJECTED and too_small.code == 21121
    assert not too_small.worth_retrying
    await sim.faults(reject_next_sendtx=1, code=21130, message="not enough margin")
    refused = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(2))
    assert refused.status is SendStatus.REJECTED and refused.code == 21130
    assert "not enough margin" in refused.message and not refused.worth_retrying
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(3))).accepted
    assert account.nonce_resyncs == 0  # a refusal did not consume the nonce: the counter was kept
    assert account.stream_stats()["ws_transactions"] == 3


async def test_a_nonce_used_elsewhere_is_resynced_once_over_the_socket(sim: SimProcess,
                                                                      open_account: Opener) -> None:
    account, _ = await sent_over_ws(sim, open_account)
    btc = account.market("BTC")
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))).accepted
    other = await sim.signer(101)  # another client on the same key takes the nonce the adapter expects
    tx_type, tx_info, _, err = other.sign_cancel_order(1, coid(1), nonce=1, api_key_index=3)
    assert err is None and (await other.send_tx(tx_type, tx_info)).code == 200
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))
    assert result.accepted and account.nonce_resyncs == 1
    assert account.stream_stats()["ws_transactions"] == 3  # the refused one and its retry


async def test_no_answer_on_the_socket_is_unknown_and_the_order_may_exist(sim: SimProcess,
                                                                         open_account: Opener) -> None:
    # The simulator executes the transaction but its answer is lost in a silence shorter than the heartbeat.
    account, _ = await sent_over_ws(sim, open_account, request_timeout_s=0.5, ws_heartbeat_timeout_s=10.0)
    btc = account.market("BTC")
    await sim.faults(silence_ws_s=1.0)
    lost = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert lost.status is SendStatus.UNKNOWN  # never REJECTED: the order may exist
    assert account.stream_stats()["ws_transactions_unanswered"] == 1
    await silence_over(sim)
    after = await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))
    assert after.accepted and account.nonce_resyncs == 1  # the nonce was resynced before the next send
    found = await account.orders_by_client_index([coid(1), coid(2)])
    assert found[coid(1)].state is VenueState.LIVE  # the unanswered order did reach the book


async def test_a_connection_lost_before_the_answer_is_unknown_at_once(sim: SimProcess,
                                                                      open_account: Opener) -> None:
    account, _ = await sent_over_ws(sim, open_account, request_timeout_s=30.0, ws_heartbeat_timeout_s=10.0)
    btc = account.market("BTC")
    await sim.faults(silence_ws_s=5.0)  # the answer is lost...
    sending = asyncio.ensure_future(account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1)))
    while not any(txs for txs in (await sim.txlog(101)).values()):  # noqa: ASYNC110 (the sim got it)
        await asyncio.sleep(0.02)
    await sim.faults(drop_websockets=True)  # ...and the connection ends: no need to wait 30 s
    lost = await asyncio.wait_for(sending, 10.0)
    assert lost.status is SendStatus.UNKNOWN and "connection ended" in lost.message


async def test_a_socket_that_is_down_sends_over_http(sim: SimProcess, open_account: Opener) -> None:
    nothing_there = f"ws://127.0.0.1:{free_port()}/stream"
    account, _ = await open_account(sim, books=(), send_over_websocket=True, ws_url=nothing_there)
    assert not account.stream_up
    btc = account.market("BTC")
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert result.accepted
    assert account.stream_stats()["ws_transactions"] == 0  # it went over HTTP
    assert (await account.orders_by_client_index([coid(1)]))[coid(1)].state is VenueState.LIVE


async def test_transactions_are_not_charged_to_the_message_budget(sim: SimProcess,
                                                                 open_account: Opener) -> None:
    # A budget of 21 messages a minute cannot afford 25 more frames: transactions must not be counted.
    account, _ = await sent_over_ws(sim, open_account, ws_messages_per_minute=BURST + 1,
                                    ws_heartbeat_timeout_s=10.0)
    btc = account.market("BTC")
    started = time.monotonic()
    for n in range(1, 26):
        assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0") - n, coid(n))).accepted
    stats = account.stream_stats()
    assert stats["ws_transactions"] == 25
    assert stats["ws_messages_sent"] <= BURST + (time.monotonic() - started) / 60
