"""WebSocket `/stream`: book snapshots and updates chained by nonce, account channels and auth, refusals,
ping/pong, sendtx. The frame shapes are checked against the venue's in test_sim_wire_contract.py."""

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
BOOK_KEYS = {"channel", "last_updated_at", "offset", "order_book", "timestamp", "type"}
INNER_BOOK_KEYS = {"code", "asks", "bids", "offset", "nonce", "last_updated_at", "begin_nonce"}


async def rest_order(client: Any, coid: int, price: int, ask: bool, size: int = MIN_LOT) -> None:
    _, resp, err = await client.create_order(BTC, coid, size, price, ask, LIMIT, POST_ONLY)
    assert err is None and resp.code == 200, (err, resp)


async def test_book_updates_chain_by_nonce_and_offsets_belong_to_the_connection(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await rest_order(client, 11000000000001, 949000, ask=False)
    await rest_order(client, 11000000000002, 951000, ask=True)
    await rest_order(client, 11000000000003, 952000, ask=True)
    async with sim.stream() as ws, sim.stream() as other:
        await ws.subscribe("order_book/1")
        snap = await ws.expect("subscribed/order_book")
        assert (set(snap), set(snap["order_book"])) == (BOOK_KEYS, INNER_BOOK_KEYS)
        assert snap["channel"] == "order_book:1"
        book = snap["order_book"]
        assert book["asks"] == [
            {"price": "95100.0", "size": "0.00020"},
            {"price": "95200.0", "size": "0.00020"},
        ]
        assert book["bids"] == [{"price": "94900.0", "size": "0.00020"}]
        assert book["begin_nonce"] == 0 and book["offset"] == snap["offset"]
        assert book["last_updated_at"] == snap["last_updated_at"] > 10**15  # µs
        await other.subscribe("order_book/1")
        other_snap = await other.expect("subscribed/order_book")
        assert other_snap["order_book"]["nonce"] == book["nonce"]  # the venue's chain, the same for everyone
        assert other_snap["offset"] != snap["offset"]  # the API server's counter, not the book's

        await rest_order(client, 11000000000004, 949000, ask=False)  # same level grows
        update = await ws.expect("update/order_book")
        inner = update["order_book"]
        assert inner["begin_nonce"] == book["nonce"] < inner["nonce"]
        assert inner["bids"] == [{"price": "94900.0", "size": "0.00040"}] and inner["asks"] == []
        assert update["offset"] == inner["offset"] > snap["offset"]
        assert (await other.expect("update/order_book"))["order_book"]["nonce"] == inner["nonce"]

        await sim.trade(BTC, "buy", "0.00020")  # takes the best ask: the level disappears
        following = await ws.expect("update/order_book")
        assert following["order_book"]["begin_nonce"] == inner["nonce"]
        assert following["order_book"]["asks"] == [{"price": "95100.0", "size": "0.00000"}]

        await ws.send({"type": "unsubscribe", "channel": "order_book/1"})
        assert await ws.ws.receive_str(timeout=5) == '{"type": "unsubscribed", "channel": "order_book:1"}'
        await rest_order(client, 11000000000005, 948000, ask=False)
        # The next frame is an answer to our own ping, not a book update: unsubscribed means silent.
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"


async def test_a_new_connection_resyncs_from_a_snapshot_whose_nonce_the_next_update_continues(
    sim: SimProcess,
) -> None:
    client = await sim.signer(101)
    async with sim.stream() as first:
        await first.subscribe("order_book/1")
        await first.expect("subscribed/order_book")
        await rest_order(client, 11000000000001, 949000, ask=False)
        before = (await first.expect("update/order_book"))["order_book"]["nonce"]
    async with sim.stream() as again:
        await again.subscribe("order_book/1")
        snap = (await again.expect("subscribed/order_book"))["order_book"]
        assert snap["nonce"] == before and snap["bids"] == [{"price": "94900.0", "size": "0.00020"}]
        await rest_order(client, 11000000000002, 948000, ask=False)
        assert (await again.expect("update/order_book"))["order_book"]["begin_nonce"] == snap["nonce"]


async def test_account_channels_need_auth_and_carry_fills_orders_and_positions(sim: SimProcess) -> None:
    client = await sim.signer(101)
    token = sim.auth_token(client)
    async with sim.stream() as ws:
        await ws.subscribe("account_all_trades/101")  # no auth
        missing = await ws.expect_error(20001)
        assert missing["message"] == "invalid param : auth field is required: account_all_trades:101"
        other = sim.auth_token(await sim.signer(102))
        await ws.subscribe("account_all_orders/101", auth=other)  # someone else's token
        refused = await ws.expect_error(20013)
        assert refused["message"].startswith("invalid auth: ") and refused["message"].endswith(
            "account_all_orders:101"
        )
        assert not refused["message"].startswith("invalid auth: invalid auth")  # one prefix, as captured
        await ws.subscribe("account_all_orders/101", auth=sim.auth_token(client, ttl_s=9 * 3600))
        too_long = await ws.expect_error(20013)  # the venue's REST refusal of a 9 h token, on the channel
        assert too_long["message"] == "invalid auth: invalid deadline: account_all_orders:101"

        for channel in ("account_all_orders", "account_all_trades", "account_all_positions"):
            await ws.subscribe(f"{channel}/101", auth=token)
            snap = await ws.expect(f"subscribed/{channel}")
            assert snap["channel"] == f"{channel}:101"
        await ws.subscribe("account_orders/1/101", auth=token)
        per_market_snap = await ws.expect("subscribed/account_orders")
        assert (per_market_snap["channel"], per_market_snap["account"]) == ("account_orders:1", 101)
        await ws.subscribe("account_all/101")
        assert (await ws.expect("subscribed/account_all"))["account"] == 101

        await rest_order(client, 11000000000010, 949000, ask=False, size=2 * MIN_LOT)
        opened = (await ws.expect("update/account_all_orders"))["orders"]["1"][0]
        models.Order.from_dict(opened)
        assert (opened["client_order_index"], opened["status"]) == (11000000000010, "open")
        per_market = await ws.expect("update/account_orders")
        assert per_market["account"] == 101
        assert per_market["orders"]["1"][0]["order_index"] == opened["order_index"]
        # the new open order count follows, the position unchanged (testnet positions capture, line 3)
        counted = (await ws.expect("update/account_all_positions"))["positions"]["1"]
        assert (counted["open_order_count"], counted["sign"], counted["position"]) == (1, 1, "0.00000")

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


async def test_snapshots_after_resubscribing_carry_no_past_trades(sim: SimProcess) -> None:
    client = await sim.signer(101)
    token = sim.auth_token(client)
    await rest_order(client, 11000000000010, 949000, ask=False)
    fills = await sim.trade(BTC, "sell", "0.00020")
    assert len(fills) == 1
    async with sim.stream() as ws:
        await ws.subscribe("account_all_trades/101", auth=token)
        trades_snap = await ws.expect("subscribed/account_all_trades")
        await ws.subscribe("account_all/101")
        all_snap = await ws.expect("subscribed/account_all")
    assert trades_snap["trades"] == {} and all_snap["trades"] == {}  # fills missed are REST's to recover
    assert trades_snap["total_volume"] == all_snap["total_volume"] == float(fills[0]["usd_amount"])
    assert all_snap["total_trades_count"] == 1 and all_snap["positions"]["1"]["position"] == "0.00020"


async def test_refusals_are_error_frames_not_a_closed_socket(sim: SimProcess) -> None:
    async with sim.stream() as ws:
        await ws.ws.send_str("not json")
        assert (await ws.expect_error(30007))["message"] == "Invalid Data"
        for channel in ("candles/1", "order_book", "order_book/x", 5, ["order_book/1"], None):
            await ws.send({"type": "subscribe", "channel": channel})
            assert await ws.expect_error(30005) == {"code": 30005, "message": "Invalid Channel"}
        await ws.subscribe("order_book/9")
        assert (await ws.expect_error(30005))["message"] == "Invalid Channel:  (marketId)"
        await ws.subscribe("order_book/0")
        assert (await ws.expect("subscribed/order_book"))["channel"] == "order_book:0"
        await ws.subscribe("order_book/0")  # again: refused, and no second snapshot
        assert (await ws.expect_error(30003))["message"] == "Already Subscribed to : order_book:0"
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"


async def test_sendtx_over_the_websocket_answers_flat_with_the_request_id(sim: SimProcess) -> None:
    client = await sim.signer(101)
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000020, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    async with sim.stream() as ws:
        data = {"id": "order-1", "tx_type": 14, "tx_info": tx_info}
        await ws.send({"type": "jsonapi/sendtx", "data": data})
        reply = await ws.expect("jsonapi/sendtx")
        assert set(reply) == {"code", "id", "predicted_execution_time_ms", "tx_hash", "type"}
        assert (reply["code"], reply["id"]) == (200, "order-1")
        await ws.send({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx_info}})  # replay
        again = await ws.expect("jsonapi/sendtx")
        assert again == {"code": 21104, "message": "invalid nonce", "type": "jsonapi/sendtx"}
        await ws.send({"type": "jsonapi/sendtx", "data": "not an object"})
        assert (await ws.expect_error(30007))["message"] == "Invalid Data"
    body = await sim.get("/api/v1/orderBookOrders", {"market_id": 1, "limit": 5})
    assert [b["price"] for b in body["bids"]] == ["94900.0"]


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
        assert [level for level in book["bids"] if level["price"] == "94900.0"] == []  # removed by the update
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
