"""Integration: the account stream against the simulator (drops, silence, token renewal, replayed fills)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from hedge_strategy.exchange import (
    Event,
    Fill,
    OrderUpdate,
    PublicTrade,
    Side,
    StreamDown,
    StreamUp,
    TopOfBook,
    VenueState,
)
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import MIN_SIZE, Opener, events_until, maker_coid, next_event, open_account

__all__ = ["open_account"]

D = Decimal
SIZE = MIN_SIZE
coid = maker_coid


async def test_dropped_websocket_reconnects_and_resnapshots_without_past_fills(sim: SimProcess,
                                                                             open_account: Opener) -> None:
    account, events = await open_account(sim)
    btc = account.market("BTC")
    assert await next_event(events, StreamUp) == StreamUp(101, reconnect=False)
    since_ms = int(time.time() * 1000)
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    await next_event(events, OrderUpdate, lambda u: u.state is VenueState.LIVE)

    # Both connections drop, and the simulator says nothing for a moment: the fill happens while we are away.
    dropped = await sim.faults(drop_websockets=True, silence_ws_s=0.3)
    assert dropped["dropped_websockets"] == 2  # the account connection and the book connection
    trades = await sim.trade(market_id=1, side="sell", size="0.0002")
    down = await next_event(events, StreamDown)
    assert down.account_index == 101 and "1001" in down.reason
    seen = await events_until(events, lambda seen: any(isinstance(e, StreamUp) for e in seen) and any(
        isinstance(e, TopOfBook) and e.best_bid is None for e in seen))  # resnapshotted: our bid was filled
    assert StreamUp(101, reconnect=True) in seen
    # Like the venue's, the simulator's snapshots carry no past trades: the fill is for reconciliation to
    # read over REST (tests/test_recovery_ws.py runs that path).
    assert not any(isinstance(e, Fill) for e in seen)
    missed = await account.trades_since(since_ms, btc)
    assert [f.trade_id for f in missed] == [trades[0]["trade_id"]] and missed[0].client_order_index == coid(1)
    assert account.stream_up


async def test_the_public_trade_feed_names_the_other_accounts_maker_order(sim: SimProcess,
                                                                          open_account: Opener) -> None:
    """B's view: account 102 follows BTC's public trades and sees 101's maker fill, with its client order
    index, without any channel of 101's."""
    maker, _ = await open_account(sim, account_index=101)
    watcher, events = await open_account(sim, account_index=102, trades=("BTC",))
    btc = maker.market("BTC")
    assert (await maker.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    trades = await sim.trade(market_id=1, side="sell", size="0.0002")
    trade = await next_event(events, PublicTrade, lambda t: t.trade_id == trades[0]["trade_id"])
    assert (trade.maker_account_id, trade.maker_client_id, trade.maker_side) == (101, coid(1), Side.BUY)
    assert (trade.market_id, trade.size, trade.price) == (1, D("0.0002"), D("94000.0"))
    assert not any(isinstance(e, Fill) for e in _drain(events))  # nothing of 102's own
    assert watcher.stream_up


def _drain(queue: asyncio.Queue[Event]) -> list[Event]:
    drained = []
    while not queue.empty():
        drained.append(queue.get_nowait())
    return drained


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
