"""The stream under the venue's harder moments, against a scripted server: error frames in both forms, the
shutdown notice, and a burst of book gaps while fills keep coming, all within the WebSocket message budget.
"""

from __future__ import annotations

import asyncio

from hedge_strategy.exchange.events import Event, Fill, StreamDown, StreamUp
from hedge_strategy.exchange.stream import PRIVATE_CHANNELS
from hedge_strategy.exchange.ws_budget import FLOORS, MessageBudget, Priority
from tests.fixtures.ws_script import ACCOUNT, Conn, Scripted, account_snapshot, book_frame, next_of

PRIVATE = PRIVATE_CHANNELS


def trade(trade_id: int) -> dict[str, object]:
    return {"trade_id": trade_id, "market_id": 1, "size": "0.0002", "price": "95000.0", "is_maker_ask": False,
            "bid_account_id": ACCOUNT, "ask_account_id": 999, "bid_id": 281474976710700 + trade_id,
            "ask_id": 281474976710000, "bid_client_id": 11000000000001, "timestamp": 1_700_000_000_000}


def trades_frame(*trade_ids: int) -> dict[str, object]:
    return {"type": "update/account_all_trades", "channel": f"account_all_trades:{ACCOUNT}",
            "trades": {"1": [trade(t) for t in trade_ids]}}


async def subscribed(conn: Conn, name: str) -> None:
    await conn.send(account_snapshot(name))


def drain(events: asyncio.Queue[Event]) -> list[Event]:
    seen = []
    while not events.empty():
        seen.append(events.get_nowait())
    return seen


async def test_error_frames_in_both_forms(scripted: Scripted) -> None:
    stream = scripted.stream(books=(), heartbeat_s=30.0)
    account = await scripted.script.next_account()
    for name in PRIVATE:
        await account.expect(type="subscribe", channel=f"{name}/{ACCOUNT}")
    await subscribed(account, "account_all_orders")
    # 30012 names its channel: that one is subscribed again later, within the budget.
    await account.send({"type": "error", "code": 30012, "channel": f"account_all_trades:{ACCOUNT}",
                        "message": "failed to subscribe"})
    # 30003 without a type, the channel only in the message (the captured form): it simply is subscribed.
    await account.send({"error": {"code": 30003,
                                  "message": f"Already Subscribed to : account_all_positions:{ACCOUNT}"}})
    await subscribed(account, "account_tx")
    await account.expect(type="subscribe", channel=f"account_all_trades/{ACCOUNT}")
    await subscribed(account, "account_all_trades")
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)

    # 30009 (captured text): the budget backs off; the connection stays, and pings are still answered.
    await account.send({"error": {"code": 30009, "message": "Too Many Websocket Messages!"}})
    await account.send({"type": "ping"})
    await account.expect(type="pong")
    await account.send(trades_frame(1))
    assert (await next_of(scripted.events, Fill)).trade_id == 1
    assert stream.budget.rate_limited_count == 1
    assert stream.up and not account.closed and scripted.script.accounts.empty()
    assert not any(isinstance(e, StreamDown) for e in drain(scripted.events))


async def test_shutdown_moves_to_a_new_connection_before_the_close(scripted: Scripted) -> None:
    stream = scripted.stream(books=())
    old = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    await old.send({"type": "shutdown", "close_in_ms": 5000})
    new = await scripted.script.next_account()
    await old.send(trades_frame(1))  # the old connection still delivers while the new one subscribes
    assert (await next_of(scripted.events, Fill)).trade_id == 1
    await new.confirm_account()
    await asyncio.wait_for(old.ws.wait_closed(), 5)  # closed by the client once the new one was up
    await new.send(trades_frame(2))
    assert (await next_of(scripted.events, Fill)).trade_id == 2
    assert not any(isinstance(e, StreamDown | StreamUp) for e in drain(scripted.events))  # no gap at all
    assert stream.up and stream.connects == 1


async def test_shutdown_that_comes_first_is_a_reconnect(scripted: Scripted) -> None:
    scripted.stream(books=())
    old = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    await old.send({"type": "shutdown", "close_in_ms": 0})
    new = await scripted.script.next_account()  # opened at once, not after a silence or a backoff
    await old.ws.close()
    down = await next_of(scripted.events, StreamDown)
    assert "connection closed" in down.reason
    await new.confirm_account()
    # A reconnect: the tracker has reconciliation read the fills of the gap from REST.
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=True)


async def test_a_burst_of_book_gaps_keeps_the_fills_flowing_within_the_budget(scripted: Scripted) -> None:
    per_minute, burst = 120, 20
    budget = MessageBudget(per_minute=per_minute, burst=burst)
    stream = scripted.stream(budget=budget, heartbeat_s=5.0)
    account = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    books = await scripted.script.next_books()

    async def gap_after_every_snapshot() -> None:
        """Answer each (re)subscribe with a snapshot and at once an update that does not follow it."""
        nonce = 1000
        while True:
            frame = await books.inbox.get()
            if frame["type"] == "ping":
                await books.send({"type": "pong"})
            elif frame["type"] == "subscribe":
                nonce += 100
                await books.send(book_frame("subscribed", [("100.0", "1")], [("101.0", "1")], nonce=nonce,
                                            begin_nonce=0))
                await books.send(book_frame("update", [("99.0", "1")], [], nonce=nonce + 20,
                                            begin_nonce=nonce + 10))

    storm = asyncio.create_task(gap_after_every_snapshot())
    try:
        fills: list[int] = []
        for trade_id in range(1, 21):  # fills all along on the account connection, a ping every 5th
            if trade_id % 5 == 0:
                await account.send({"type": "ping"})
                await account.expect(type="pong")
            await account.send(trades_frame(trade_id))
            fills.append((await next_of(scripted.events, Fill)).trade_id)
            await asyncio.sleep(0.2)
    finally:
        storm.cancel()
    assert fills == list(range(1, 21))  # every fill, in order
    assert not any(isinstance(e, StreamDown) for e in drain(scripted.events))
    assert not account.closed and stream.up and scripted.script.accounts.empty()
    # Each snapshot was followed by a gap: without a budget the client would resync as fast as the server
    # answers. With it, resyncs only spend what the book priority may take.
    sent = len(scripted.script.log)
    assert sent == budget.sent
    assert sent <= budget.most_allowed()  # its burst + its refill over its own clock: no window holds more
    book_frames = [f for _, f in scripted.script.log if f.get("type") in ("subscribe", "unsubscribe")
                   and str(f.get("channel")).startswith("order_book")]
    assert stream.book_resyncs >= 2
    assert len(book_frames) <= budget.most_allowed() - FLOORS[Priority.BOOK]


async def test_a_move_the_venue_refuses_falls_back_to_a_reconnect(scripted: Scripted) -> None:
    stream = scripted.stream(books=())
    old = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    await old.send({"type": "shutdown", "close_in_ms": 5000})
    new = await scripted.script.next_account()
    # Should the venue count the channel as subscribed already (keyed by more than the connection), closing
    # the old connection would lose it: the move is called off and the old one keeps delivering.
    already = f"Already Subscribed to : account_all_orders:{ACCOUNT}"
    await new.send({"error": {"code": 30003, "message": already}})
    await asyncio.wait_for(new.ws.wait_closed(), 5)
    await old.send(trades_frame(1))
    assert (await next_of(scripted.events, Fill)).trade_id == 1 and not old.closed
    await old.ws.close()  # the announced close: now a plain reconnect, reconciled as one
    assert "connection closed" in (await next_of(scripted.events, StreamDown)).reason
    await scripted.script.open_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=True)
    assert stream.handovers == 0
