"""Integration: sending safely against the simulator's fault routes (nonces, ambiguous outcomes, 429s)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hedge_strategy.exchange import OrderUpdate, Purpose, Role, SendStatus, Side, VenueState, make_coid
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import Opener, next_event, open_account

__all__ = ["open_account"]

D = Decimal
SIZE = D("0.0002")
SEND_TX = "/api/v1/sendTx"


def coid(n: int) -> int:
    return make_coid(Role.A, Purpose.MAKER, n)


async def test_nonce_desync_resyncs_once_and_succeeds(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))).accepted
    # Another client on the same key consumes the nonce the adapter expects to use next.
    other = await sim.signer(101)
    tx_type, tx_info, _, err = other.sign_cancel_order(1, coid(1), nonce=1, api_key_index=3)
    assert err is None
    assert (await other.send_tx(tx_type, tx_info)).code == 200

    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))
    assert result.status is SendStatus.ACCEPTED
    assert account.nonce_resyncs == 1
    found = await account.orders_by_client_index([coid(1), coid(2)])
    assert (found[coid(1)].state, found[coid(2)].state) == (VenueState.CANCELED, VenueState.LIVE)


async def test_unanswered_sendtx_is_unknown_and_found_by_client_index(sim: SimProcess,
                                                                      open_account: Opener) -> None:
    account, _ = await open_account(sim, books=(), request_timeout_s=1.0)
    btc = account.market("BTC")
    await sim.faults(blackhole_next_sendtx=1)
    lost = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert lost.status is SendStatus.UNKNOWN  # never REJECTED: the order may exist

    after = await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))
    assert after.status is SendStatus.ACCEPTED  # the nonce was resynced, so the next send is clean
    assert account.nonce_resyncs == 1
    found = await account.orders_by_client_index([coid(1), coid(2)])
    assert found[coid(1)].state is VenueState.LIVE  # the ambiguous order did reach the book


async def test_server_error_is_unknown_then_next_send_works(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    await sim.faults(http_error_next=1, status=503, paths=[SEND_TX])
    failed = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert failed.status is SendStatus.UNKNOWN and "503" in failed.message
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))).accepted
    assert set(await account.orders_by_client_index([coid(1), coid(2)])) == {coid(2)}


async def test_rate_limited_burst_backs_off_then_succeeds(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    await sim.faults(http_error_next=3, status=429, paths=[SEND_TX])
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert result.status is SendStatus.ACCEPTED
    assert account.nonce_resyncs == 0  # a 429 is refused before processing: same tx, same nonce
    assert (await sim.admin("GET", "/sim/faults"))["faults"]["http_error_next"] is None  # all 3 consumed


async def test_rate_limit_beyond_budget_is_rejected_23000(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    await sim.faults(http_error_next=100, status=429, paths=[SEND_TX])
    result = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1))
    assert result.status is SendStatus.REJECTED and result.code == 23000
    await sim.clear_faults()
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(2))).accepted
    assert set(await account.orders_by_client_index([coid(1), coid(2)])) == {coid(2)}


async def test_exchange_rejections_keep_the_nonce(sim: SimProcess, open_account: Opener) -> None:
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")
    too_small = await account.place_post_only(btc, Side.BUY, D("0.0001"), D("90000.0"), coid(1))
    assert too_small.status is SendStatus.REJECTED and too_small.code == 21121
    assert not too_small.worth_retrying  # "size below minimum": final by its message (the code is the sim's)
    await sim.faults(reject_next_sendtx=1, code=21130, message="not enough margin")
    refused = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(2))
    assert refused.status is SendStatus.REJECTED and refused.code == 21130
    assert "not enough margin" in refused.message and not refused.worth_retrying
    await sim.faults(reject_next_sendtx=1)  # the injected failure (29500): no meaning known, worth retrying
    injected = await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(4))
    assert injected.status is SendStatus.REJECTED and injected.worth_retrying
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(3))).accepted
    assert account.nonce_resyncs == 0


async def test_send_waits_for_ready_and_a_failed_ready_sends_nothing(sim: SimProcess,
                                                                     open_account: Opener) -> None:
    """`ready` (the caller's write-ahead record) gates the post: nothing reaches the exchange before it is
    done, and nothing at all when it fails."""
    account, _ = await open_account(sim, books=())
    btc = account.market("BTC")

    async def sent_count() -> int:
        return sum(len(txs) for txs in (await sim.txlog(101)).values())

    before = await sent_count()

    async def failing_record() -> None:
        raise OSError("disk full")

    refused = await account.place_ioc(btc, Side.BUY, SIZE, D("90000.0"), coid(1), ready=failing_record())
    assert refused.status is SendStatus.REJECTED and "write-ahead record failed" in refused.message
    assert await sent_count() == before  # the exchange never saw it

    gate = asyncio.Event()
    sent = asyncio.ensure_future(account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(2),
                                                         ready=gate.wait()))
    with pytest.raises(TimeoutError):  # held by the gate: not posted yet
        await asyncio.wait_for(asyncio.shield(sent), 0.5)
    assert await sent_count() == before
    gate.set()
    assert (await sent).accepted  # and the nonce the refused send did not use is still the right one
    assert (await account.orders_by_client_index([coid(2)]))[coid(2)].state is VenueState.LIVE


async def test_a_send_cancelled_mid_post_resyncs_its_nonce_before_the_next(sim: SimProcess,
                                                                           open_account: Opener) -> None:
    """The cancelled post reached the exchange (and used its nonce): the next send must not collide."""
    account, events = await open_account(sim, books=(), request_timeout_s=30.0)
    btc = account.market("BTC")
    await sim.faults(blackhole_next_sendtx=1)
    pending = asyncio.ensure_future(account.place_post_only(btc, Side.BUY, SIZE, D("90000.0"), coid(1)))
    await next_event(events, OrderUpdate, lambda u: u.client_order_index == coid(1))  # it is on the book
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending

    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("90001.0"), coid(2))).accepted
    codes = [tx.get("code") for txs in (await sim.txlog(101)).values() for tx in txs]
    assert 21104 not in codes  # no send went out with the nonce the cancelled one had used
