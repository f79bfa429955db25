"""WebSocket `/stream`: snapshots, deltas and offsets, account channels and auth, ping/pong, sendtx."""

from __future__ import annotations

import asyncio
from typing import Any

import lighter
from lighter import models

from tests.fixtures.sim import SimFactory, SimProcess

BTC = 1
MIN_LOT = 20
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY


async def rest_order(client: Any, coid: int, price: int, ask: bool, size: int = MIN_LOT) -> None:
    _, resp, err = await client.create_order(BTC, coid, size, price, ask, LIMIT, POST_ONLY)
    assert err is None and resp.code == 200, (err, resp)


async def test_order_book_snapshot_then_deltas_with_consecutive_offsets(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await rest_order(client, 11000000000001, 949000, ask=False)
    await rest_order(client, 11000000000002, 951000, ask=True)
    await rest_order(client, 11000000000003, 952000, ask=True)
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")
        snap = await ws.expect("subscribed/order_book")
        assert snap["channel"] == "order_book:1"
        book = snap["order_book"]
        assert book["asks"] == [
            {"price": "95100.0", "size": "0.00020"},
            {"price": "95200.0", "size": "0.00020"},
        ]
        assert book["bids"] == [{"price": "94900.0", "size": "0.00020"}]
        offset = snap["offset"]
        assert book["offset"] == offset

        await rest_order(client, 11000000000004, 949000, ask=False)  # same level grows
        delta = await ws.expect("update/order_book")
        assert delta["offset"] == offset + 1 and delta["order_book"]["offset"] == offset + 1
        assert delta["order_book"]["bids"] == [{"price": "94900.0", "size": "0.00040"}]
        assert delta["order_book"]["asks"] == []

        await sim.trade(BTC, "buy", "0.00020")  # takes the best ask: the level disappears
        delta = await ws.expect("update/order_book")
        assert delta["offset"] == offset + 2
        assert delta["order_book"]["asks"] == [{"price": "95100.0", "size": "0.00000"}]

        await ws.send({"type": "unsubscribe", "channel": "order_book/1"})
        await ws.expect("unsubscribed", channel="order_book:1")
        await rest_order(client, 11000000000005, 948000, ask=False)
        # The next frame is an answer to our own ping, not a book delta: unsubscribed means silent.
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"


async def test_account_channels_need_auth_and_carry_fills_orders_and_positions(sim: SimProcess) -> None:
    client = await sim.signer(101)
    token = sim.auth_token(client)
    async with sim.stream() as ws:
        await ws.subscribe("account_all_trades/101")  # no auth
        error = await ws.expect("error")
        # The venue's codes (corpus ws/control): no token 20001, a refused token 20013.
        assert (error["code"], error["channel"]) == (20001, "account_all_trades/101")
        other = sim.auth_token(await sim.signer(102))
        await ws.subscribe("account_all_orders/101", auth=other)  # someone else's token
        assert (await ws.expect("error"))["code"] == 20013

        for channel in ("account_all_orders", "account_all_trades", "account_all_positions"):
            await ws.subscribe(f"{channel}/101", auth=token)
            snap = await ws.expect(f"subscribed/{channel}")
            assert snap["channel"] == f"{channel}:101"
        await ws.subscribe("account_all/101")
        assert (await ws.expect("subscribed/account_all"))["account"] == 101

        await rest_order(client, 11000000000010, 949000, ask=False, size=2 * MIN_LOT)
        opened = (await ws.expect("update/account_all_orders"))["orders"]["1"][0]
        models.Order.from_dict(opened)
        assert (opened["client_order_index"], opened["status"]) == (11000000000010, "open")

        await sim.trade(BTC, "sell", "0.00020")
        fill = (await ws.expect("update/account_all_trades"))["trades"]["1"][0]
        models.Trade.from_dict(fill)
        assert fill["bid_client_id"] == 11000000000010 and fill["bid_id"] == opened["order_index"]
        assert (fill["size"], fill["price"], fill["is_maker_ask"]) == ("0.00020", "94900.0", False)
        assert fill["trade_id"] > 0 and fill["timestamp"] > 1_700_000_000_000  # ms
        pos = (await ws.expect("update/account_all_positions"))["positions"]["1"]
        models.AccountPosition.from_dict(pos)
        assert (pos["sign"], pos["position"]) == (1, "0.00020")
        partial = (await ws.expect("update/account_all_orders"))["orders"]["1"][0]
        assert (partial["status"], partial["filled_base_amount"]) == ("open", "0.00020")
        saw_trade = saw_position = False
        while not (saw_trade and saw_position):  # account_all carries both, in separate updates
            frame = await ws.expect("update/account_all", account=101)
            saw_trade |= bool(frame["trades"].get("1"))
            saw_position |= bool(frame["positions"].get("1"))


async def test_bad_frames_get_error_frames_not_a_closed_socket(sim: SimProcess) -> None:
    async with sim.stream() as ws:
        await ws.ws.send_str("not json")
        assert (await ws.expect("error"))["code"] == 21106
        await ws.subscribe("candles/1")
        assert "unknown channel" in (await ws.expect("error"))["message"]
        await ws.subscribe("order_book/9")
        assert (await ws.expect("error"))["code"] == 21120
        await ws.subscribe("order_book/0")
        assert (await ws.expect("subscribed/order_book"))["channel"] == "order_book:0"


async def test_sendtx_over_the_websocket(sim: SimProcess) -> None:
    client = await sim.signer(101)
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000020, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    async with sim.stream() as ws:
        await ws.send({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx_info}})
        reply = (await ws.expect("jsonapi/sendtx"))["data"]
        assert models.RespSendTx.from_dict(reply).code == 200
        await ws.send({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx_info}})  # replay
        again = (await ws.expect("jsonapi/sendtx"))["data"]
        assert (again["code"], again["message"]) == (21104, "invalid nonce")
    book = models.OrderBookOrders.from_dict(
        await sim.get("/api/v1/orderBookOrders", {"market_id": 1, "limit": 5})
    )
    assert [b.price for b in book.bids] == ["94900.0"]


async def test_server_pings_and_closes_a_client_that_never_pongs_with_1008(sim_factory: SimFactory) -> None:
    sim = await sim_factory({"websocket": {"ping_interval_s": 0.2, "pong_timeout_s": 0.6}})
    async with sim.stream(auto_pong=True) as polite, sim.stream(auto_pong=False) as silent:

        async def answer_pings(count: int) -> None:
            for _ in range(count):
                await polite.expect("ping", wait_s=2)  # recv answers each ping with a pong

        code, _ = await asyncio.gather(silent.closed(wait_s=5), answer_pings(6))
        assert code == 1008
        assert sum(f["type"] == "ping" for f in silent.frames) >= 2
        # The client that answered outlived the silent one, and is still served.
        await polite.subscribe("order_book/1")
        assert (await polite.expect("subscribed/order_book"))["channel"] == "order_book:1"
    assert "no pong" in sim.log()


async def test_the_sdk_wsclient_reads_books_and_account_all(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await rest_order(client, 11000000000030, 949000, ask=False)
    books: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    accounts: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    ws_client = lighter.WsClient(
        ws_url=sim.ws_url,
        order_book_ids=[1],
        account_ids=[101],
        on_order_book_update=lambda m, book: books.put_nowait((m, book)),
        on_account_update=lambda a, msg: accounts.put_nowait((a, msg)),
    )
    task = asyncio.create_task(ws_client.run_async())
    try:
        market, book = await asyncio.wait_for(books.get(), 5)
        assert market == "1" and book["bids"][0]["price"] == "94900.0"
        account, message = await asyncio.wait_for(accounts.get(), 5)
        assert account == "101" and message["type"] == "subscribed/account_all"
        await sim.trade(BTC, "sell", "0.00020")
        _, book = await asyncio.wait_for(books.get(), 5)
        assert [level for level in book["bids"] if level["price"] == "94900.0"] == []  # removed by the delta
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_channel_not_a_string_gets_an_error_frame_not_a_closed_socket(sim: SimProcess) -> None:
    async with sim.stream() as ws:
        for channel in (5, ["order_book/1"], {"x": 1}, None):
            await ws.send({"type": "subscribe", "channel": channel})
            error = await ws.expect("error")
            assert error["code"] == 21106
        await ws.subscribe("order_book/1")  # the connection is still usable
        await ws.expect("subscribed/order_book")
