"""Integration: the account stream against the simulator's WebSocket faults (book_gap, shutdown,
inject_ws_frame), with the real message budget (80 a minute, ws_budget.py).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from hedge_strategy.exchange import (
    Fill,
    LighterAccount,
    Side,
    StreamDown,
    StreamUp,
    TopOfBook,
)
from hedge_strategy.exchange.ws_budget import MESSAGES_PER_MINUTE
from tests.fixtures.sim import SimProcess
from tests.test_exchange_simkit import MIN_SIZE, Opener, maker_coid, next_event, open_account

__all__ = ["open_account"]

D = Decimal
SIZE = MIN_SIZE
coid = maker_coid
REAL_BUDGET = {"ws_messages_per_minute": MESSAGES_PER_MINUTE, "ws_heartbeat_timeout_s": 6.0}


async def test_a_burst_of_book_gaps_keeps_every_fill_within_the_budget(sim: SimProcess,
                                                                     open_account: Opener) -> None:
    account, events = await open_account(sim, **REAL_BUDGET)
    btc = account.market("BTC")
    await next_event(events, StreamUp)
    await sim.faults(book_gap={"market_id": 1, "count": 1000})  # every book update breaks the chain
    for n in range(1, 9):  # each order and each fill is a book update: sixteen gaps
        assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(n))).accepted
        trades = await sim.trade(market_id=1, side="sell", size=str(SIZE))
        fill = await next_event(events, Fill)
        assert (fill.trade_id, fill.client_order_index) == (trades[0]["trade_id"], coid(n))
    stats = account.stream_stats()
    assert stats["up"] and stats["connects"] == 1 and stats["book_resyncs"] >= 2
    assert stats["ws_rate_limited"] == 0
    assert stats["ws_messages_sent"] <= account.ws_budget.most_allowed()  # burst + refill on its own clock
    while not events.empty():
        assert not isinstance(events.get_nowait(), StreamDown)
    # Once the venue's chain holds again, the book comes back by itself.
    await sim.clear_faults()
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("93000.0"), coid(99))).accepted
    await next_event(events, TopOfBook, lambda top: top.best_bid == D("93000.0"), timeout_s=15)


async def test_shutdown_notice_moves_both_connections_without_a_gap(sim: SimProcess,
                                                                    open_account: Opener) -> None:
    account, events = await open_account(sim, **REAL_BUDGET)
    btc = account.market("BTC")
    await next_event(events, StreamUp)
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    reply = await sim.faults(shutdown={"close_in_ms": 3000})
    assert reply["shutdown_announced"] == 2
    trades = await sim.trade(market_id=1, side="sell", size=str(SIZE))  # during the move
    fill = await next_event(events, Fill)
    assert fill.trade_id == trades[0]["trade_id"]
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(2))).accepted
    trades = await sim.trade(market_id=1, side="sell", size=str(SIZE))  # after it, or on the new one
    assert (await next_event(events, Fill, lambda f: f.trade_id == trades[0]["trade_id"])).trade_id
    await wait_handovers(account, 2)  # books and account each moved to a new connection
    while not events.empty():
        assert not isinstance(events.get_nowait(), StreamDown | StreamUp)  # it never went down
    assert account.stream_stats()["connects"] == 1


async def wait_handovers(account: LighterAccount, count: int) -> None:
    """Until the stream moved `count` times in all (a move emits no event)."""
    async with asyncio.timeout(10):
        while account.stream_stats()["handovers"] < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_injected_frames_garbage_already_subscribed_and_a_refused_token(sim: SimProcess,
                                                                             open_account: Opener) -> None:
    account, events = await open_account(sim, **REAL_BUDGET)
    btc = account.market("BTC")
    await next_event(events, StreamUp)
    for text in ("not json", json.dumps({"error": {"code": 30003, "message":
                                                   "Already Subscribed to : account_all_orders:101"}})):
        reply = await sim.faults(inject_ws_frame={"channel": "account_all_orders", "text": text, "count": 1})
        assert reply["injected_ws_frames"] == 1
    refused = {"error": {"code": 20013, "message": "invalid auth: expired token: account_all_orders:101"}}
    await sim.faults(inject_ws_frame={"channel": "account_all_orders", "text": json.dumps(refused),
                                      "count": 1})
    down = await next_event(events, StreamDown)
    assert "auth" in down.reason
    assert await next_event(events, StreamUp) == StreamUp(101, reconnect=True)  # a new token, same connection
    assert account.stream_stats()["connects"] == 2
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    trades = await sim.trade(market_id=1, side="sell", size=str(SIZE))
    assert (await next_event(events, Fill)).trade_id == trades[0]["trade_id"]


async def test_injected_rate_limit_backs_off_without_a_reconnect(sim: SimProcess,
                                                                 open_account: Opener) -> None:
    account, events = await open_account(sim, **REAL_BUDGET)
    btc = account.market("BTC")
    await next_event(events, StreamUp)
    too_many = json.dumps({"error": {"code": 30009, "message": "Too Many Websocket Messages!"}})
    await sim.faults(inject_ws_frame={"channel": "account_all_trades", "text": too_many, "count": 3})
    assert (await account.place_post_only(btc, Side.BUY, SIZE, D("94000.0"), coid(1))).accepted
    trades = await sim.trade(market_id=1, side="sell", size=str(SIZE))
    assert (await next_event(events, Fill)).trade_id == trades[0]["trade_id"]
    stats = account.stream_stats()
    assert stats["ws_rate_limited"] == 3 and stats["up"] and stats["connects"] == 1
    while not events.empty():
        assert not isinstance(events.get_nowait(), StreamDown)
