"""Integration: the account stream against the simulator (drops, silence, token renewal, replayed fills)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hedge_strategy.exchange import (
    Fill,
    OrderUpdate,
    Purpose,
    Role,
    Side,
    StreamDown,
    StreamUp,
    TopOfBook,
    make_coid,
)
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import Opener, events_until, next_event, open_account

__all__ = ["open_account"]

D = Decimal
SIZE = D("0.0002")


def coid(n: int) -> int:
    return make_coid(Role.A, Purpose.MAKER, n)


async def test_dropped_websocket_reconnects_resnapshots_and_replays_fills(sim: SimProcess,
                                                                         open_account: Opener) -> None:
    account, events = await open_account(sim)
    btc = account.market("BTC")
    assert await next_event(events, StreamUp) == StreamUp(101, reconnect=False)
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    await next_event(events, OrderUpdate, lambda u: u.status == "open")

    dropped = await sim.faults(drop_websockets=True)
    assert dropped["dropped_websockets"] == 2  # the account connection and the book connection
    trades = await sim.trade(market_id=1, side="sell", size="0.0002")  # fills while we may be away
    down = await next_event(events, StreamDown)
    assert down.account_index == 101 and "1001" in down.reason
    seen = await events_until(events, lambda seen: any(isinstance(e, StreamUp) for e in seen) and any(
        isinstance(e, Fill) for e in seen) and any(isinstance(e, TopOfBook) for e in seen))
    assert StreamUp(101, reconnect=True) in seen
    fills = [e for e in seen if isinstance(e, Fill)]
    assert {f.trade_id for f in fills} == {trades[0]["trade_id"]}  # replayed by the trades snapshot
    assert fills[0].client_order_index == coid(1)
    book_after = [e for e in seen if isinstance(e, TopOfBook)][-1]
    assert book_after.best_bid is None  # the resnapshotted book no longer holds our filled bid
    assert account.stream_up


async def test_silent_stream_longer_than_heartbeat_reconnects(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim, ws_heartbeat_timeout_s=1.0)
    await next_event(events, StreamUp)
    await sim.faults(silence_ws_s=1.6)
    down = await next_event(events, StreamDown, timeout_s=3.0)
    assert "no frame for" in down.reason
    assert account.seconds_since_heard() >= 1.0
    assert await next_event(events, StreamUp, timeout_s=5.0) == StreamUp(101, reconnect=True)
    assert account.seconds_since_heard() < 1.0


async def test_auth_token_renewal_keeps_private_channels(sim: SimProcess, open_account: Opener) -> None:
    account, events = await open_account(sim, auth_token_ttl_s=2)
    btc = account.market("BTC")
    await next_event(events, StreamUp)
    # Wait (bounded) until the first token was renewed: renewals happen in place, without drops.
    async with asyncio.timeout(10):
        while account.stream_stats()["token_renewals"] < 1:  # noqa: ASYNC110 (a renewal emits no event)
            await asyncio.sleep(0.05)
    while not events.empty():
        assert not isinstance(events.get_nowait(), StreamDown)
    stats = account.stream_stats()
    assert stats["up"] and stats["connects"] == 1 and stats["token_renewals"] >= 1
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    await next_event(events, OrderUpdate, lambda u: u.client_order_index == coid(1))
    # A reconnect now must subscribe with a fresh token: the sim refuses expired ones.
    await sim.faults(drop_websockets=True)
    await next_event(events, StreamDown)
    await next_event(events, StreamUp, lambda up: up.reconnect)
    trades = await sim.trade(market_id=1, side="sell", size="0.0002")
    fill = await next_event(events, Fill, lambda f: f.trade_id == trades[0]["trade_id"])
    assert fill.client_order_index == coid(1)
