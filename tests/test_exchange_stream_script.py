"""The stream loop against a scripted WebSocket server: gaps, malformed frames, pings, auth errors.

The server is real (websockets on 127.0.0.1) and plays exact frames the simulator cannot be made to send,
such as an offset gap or garbage; the code under test is the real AccountStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from hedge_strategy.exchange.events import Event, OrderUpdate, StreamDown, StreamUp, TopOfBook
from hedge_strategy.exchange.stream import AccountStream

ACCOUNT = 7
ORDER = {"order_index": 281474976710700, "client_order_index": 11000000000001, "market_index": 1,
         "owner_account_index": ACCOUNT, "initial_base_amount": "0.00020", "price": "100.0",
         "remaining_base_amount": "0.00020", "filled_base_amount": "0.00000", "is_ask": False,
         "status": "open", "updated_at": 1}


Levels = list[tuple[str, str]]


def book_frame(kind: str, offset: int, bids: Levels, asks: Levels) -> dict[str, Any]:
    levels = {"bids": [{"price": p, "size": s} for p, s in bids],
              "asks": [{"price": p, "size": s} for p, s in asks]}
    return {"type": f"{kind}/order_book", "channel": "order_book:1", "offset": offset,
            "order_book": {**levels, "offset": offset}}


class Script:
    """One server; each accepted connection hands its (connection, client frame queue) to the test."""

    def __init__(self) -> None:
        self.sessions: asyncio.Queue[tuple[ServerConnection, asyncio.Queue[dict[str, Any]]]] = asyncio.Queue()

    async def handler(self, ws: ServerConnection) -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await self.sessions.put((ws, inbox))
        with contextlib.suppress(ConnectionClosed):  # the client going away ends the session
            async for message in ws:
                await inbox.put(json.loads(message))


async def expect(inbox: asyncio.Queue[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    async def scan() -> dict[str, Any]:
        while True:
            frame = await inbox.get()
            if all(frame.get(k) == v for k, v in fields.items()):
                return frame
    return await asyncio.wait_for(scan(), 5.0)


async def next_of(events: asyncio.Queue[Event], kind: type) -> Any:
    async def scan() -> Any:
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event
    return await asyncio.wait_for(scan(), 5.0)


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Script, AccountStream, asyncio.Queue[Event], list[bool]]]:
    script = Script()
    events: asyncio.Queue[Event] = asyncio.Queue()
    token_requests: list[bool] = []

    async def token_source(fresh: bool) -> tuple[str, float]:
        token_requests.append(fresh)
        return f"token{len(token_requests)}", time.time() + 600

    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        stream = AccountStream(
            ws_url=f"ws://127.0.0.1:{port}", account_index=ACCOUNT, book_market_ids=[1],
            token_source=token_source, emit=events.put_nowait, heartbeat_timeout_s=2.0,
            backoff_min_s=0.01, backoff_max_s=0.05, token_refresh_margin_s=60)
        stream.start()
        yield script, stream, events, token_requests
        await stream.close()


async def open_session(script: Script) -> tuple[ServerConnection, asyncio.Queue[dict[str, Any]]]:
    ws, inbox = await asyncio.wait_for(script.sessions.get(), 5.0)
    await ws.send(json.dumps({"type": "connected", "session_id": "s"}))
    subscribed = [await expect(inbox, type="subscribe") for _ in range(4)]
    channels = {f["channel"]: f.get("auth") for f in subscribed}
    assert channels["order_book/1"] is None
    for name in ("account_all_orders", "account_all_trades", "account_all_positions"):
        assert channels[f"{name}/{ACCOUNT}"] is not None
        await ws.send(json.dumps({"type": f"subscribed/{name}", "channel": f"{name}:{ACCOUNT}",
                                  name.removeprefix("account_all_"): {}}))
    return ws, inbox


async def test_book_gap_resubscribes_and_garbage_is_skipped(scripted: Any) -> None:
    script, stream, events, _ = scripted
    ws, inbox = await open_session(script)
    await ws.send(json.dumps(book_frame("subscribed", 5, [("100.0", "1"), ("99.0", "2")], [("101.0", "1")])))
    top = await next_of(events, TopOfBook)  # snapshot events come first, then the confirmation
    assert (top.best_bid, top.best_ask) == (Decimal("100.0"), Decimal("101.0"))
    assert await next_of(events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)

    no_book = '{"type": "update/order_book", "channel": "order_book:1"}'
    for garbage in ("not json", "[1, 2]", '{"type": 3}', no_book):
        await ws.send(garbage)
    bad_order = dict(ORDER, price="NaN-ish", client_order_index=5)
    await ws.send(json.dumps({"type": "update/account_all_orders", "channel": f"account_all_orders:{ACCOUNT}",
                              "orders": {"1": [bad_order, ORDER], "x": [ORDER]}}))
    # The malformed book frame made the client ask for a fresh snapshot; the bad order was skipped alone.
    await expect(inbox, type="unsubscribe", channel="order_book/1")
    await expect(inbox, type="subscribe", channel="order_book/1")
    update = await next_of(events, OrderUpdate)
    assert update.client_order_index == ORDER["client_order_index"]

    await ws.send(json.dumps({"type": "ping"}))
    await expect(inbox, type="pong")

    await ws.send(json.dumps(book_frame("subscribed", 10, [("100.0", "1")], [("101.0", "1")])))
    await ws.send(json.dumps(book_frame("update", 11, [("100.0", "0"), ("99.5", "3")], [])))
    top = await next_of(events, TopOfBook)
    while top.best_bid != Decimal("99.5"):
        top = await next_of(events, TopOfBook)
    assert stream.fresh_book(1) is not None

    await ws.send(json.dumps(book_frame("update", 13, [("98.0", "1")], [])))  # 12 is missing: a gap
    await expect(inbox, type="unsubscribe", channel="order_book/1")
    await expect(inbox, type="subscribe", channel="order_book/1")
    assert stream.fresh_book(1) is None  # not trusted until the new snapshot
    await ws.send(json.dumps(book_frame("subscribed", 40, [("97.0", "1")], [("101.0", "1")])))
    top = await next_of(events, TopOfBook)
    assert top.best_bid == Decimal("97.0")
    assert stream.books[1].offset == 40
    assert stream.up  # none of this cost the connection


async def test_auth_error_reconnects_with_a_fresh_token(scripted: Any) -> None:
    script, _, events, token_requests = scripted
    ws, _ = await open_session(script)
    await ws.send(json.dumps(book_frame("subscribed", 1, [], [])))
    await next_of(events, StreamUp)
    await ws.send(json.dumps({"type": "error", "channel": f"account_all_orders/{ACCOUNT}", "code": 21140,
                              "message": "invalid auth token: expired"}))
    down = await next_of(events, StreamDown)
    assert "auth" in down.reason
    await open_session(script)
    assert token_requests == [False, True]


async def test_subscriptions_never_confirmed_means_reconnect(scripted: Any) -> None:
    script, stream, events, _ = scripted
    ws, inbox = await asyncio.wait_for(script.sessions.get(), 5.0)
    await ws.send(json.dumps({"type": "connected"}))
    await expect(inbox, type="subscribe")
    # The server says nothing more; our probe ping is the only traffic, and no StreamUp is ever emitted.
    await expect(inbox, type="ping")
    await asyncio.wait_for(script.sessions.get(), 10.0)  # the client gave up and came back
    assert events.empty() and not stream.up
