"""WebSocket faults (`book_gap`, `shutdown`, `inject_ws_frame`) and the venue's per-connection limits (200
client messages a minute, 100 subscriptions), as a client sees them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import lighter

from tests.fixtures.sim import SimProcess

BTC = 1
MIN_LOT = 20
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
TOO_MANY = {"code": 30009, "message": "Too Many Websocket Messages!"}


async def place(client: Any, coid: int, price: int) -> None:
    _, resp, err = await client.create_order(BTC, coid, MIN_LOT, price, False, LIMIT, POST_ONLY)
    assert err is None and resp.code == 200, (err, resp)


async def test_book_gap_breaks_the_nonce_chain_once_and_a_resubscribe_repairs_it(sim: SimProcess) -> None:
    client = await sim.signer(101)
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")
        nonce = (await ws.expect("subscribed/order_book"))["order_book"]["nonce"]
        reply = await sim.faults(book_gap={"market_id": 1, "count": 1})
        assert reply["faults"]["book_gap"] == {"1": 1}
        await place(client, 11000000000001, 949000)
        gap = (await ws.expect("update/order_book"))["order_book"]
        assert gap["begin_nonce"] != nonce  # a real break: the client cannot apply this update
        assert (await sim.state())["faults"]["book_gap"] is None  # spent
        await place(client, 11000000000002, 948000)
        assert (await ws.expect("update/order_book"))["order_book"]["begin_nonce"] == gap["nonce"]

        await ws.send({"type": "unsubscribe", "channel": "order_book/1"})
        await ws.expect("unsubscribed")
        await ws.subscribe("order_book/1")
        snap = (await ws.expect("subscribed/order_book"))["order_book"]
        assert {b["price"] for b in snap["bids"]} == {"94900.0", "94800.0"}
        await place(client, 11000000000003, 947000)
        assert (await ws.expect("update/order_book"))["order_book"]["begin_nonce"] == snap["nonce"]


async def test_book_gap_concerns_only_its_market(sim: SimProcess) -> None:
    client = await sim.signer(101)
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")
        nonce = (await ws.expect("subscribed/order_book"))["order_book"]["nonce"]
        await sim.faults(book_gap={"market_id": 0, "count": 2})
        await place(client, 11000000000001, 949000)
        assert (await ws.expect("update/order_book"))["order_book"]["begin_nonce"] == nonce
    assert (await sim.state())["faults"]["book_gap"] == {"0": 2}


async def test_shutdown_announces_then_closes_every_connection(sim: SimProcess) -> None:
    async with sim.stream() as first, sim.stream() as second:
        await first.subscribe("order_book/1")
        await first.expect("subscribed/order_book")
        reply = await sim.faults(shutdown={"close_in_ms": 300})
        assert reply["shutdown_announced"] == 2
        for ws in (first, second):
            assert await ws.expect("shutdown") == {"type": "shutdown", "close_in_ms": 300}
        # Still open during the notice: a client can reconnect before the close.
        await first.send({"type": "ping"})
        assert (await first.expect("pong"))["type"] == "pong"
        assert await first.closed() == 1001
        assert await second.closed() == 1001
    async with sim.stream() as later:  # connections opened afterwards are served normally
        await later.subscribe("order_book/1")
        await later.expect("subscribed/order_book")


async def test_inject_ws_frame_reaches_subscribers_of_matching_channels_only(sim: SimProcess) -> None:
    token = sim.auth_token(await sim.signer(101))
    async with sim.stream() as orders, sim.stream() as book:
        await orders.subscribe("account_all_orders/101", auth=token)
        await orders.expect("subscribed/account_all_orders")
        await book.subscribe("order_book/1")
        await book.expect("subscribed/order_book")
        text = '{"type":"update/account_all_orders", oops'
        body = {"channel": "account_all_orders", "text": text, "count": 2}
        reply = await sim.faults(inject_ws_frame=body)
        assert reply["injected_ws_frames"] == 1 and reply["faults"]["inject_ws_frame"] is None
        for _ in range(2):
            assert await orders.ws.receive_str(timeout=5) == body["text"]  # raw, not JSON
        await book.send({"type": "ping"})
        assert (await book.recv())["type"] == "pong"  # nothing was injected before it
        await orders.send({"type": "ping"})
        assert (await orders.recv())["type"] == "pong"  # sent count times, then no more


async def test_an_injection_nobody_can_receive_waits_for_the_next_matching_subscription(
    sim: SimProcess,
) -> None:
    token = sim.auth_token(await sim.signer(101))
    reply = await sim.faults(inject_ws_frame={"channel": "account_all_orders/101", "text": "garbage"})
    assert reply["injected_ws_frames"] == 0
    assert reply["faults"]["inject_ws_frame"] == {
        "channel_prefix": "account_all_orders:101", "text": "garbage", "count": 1
    }
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")  # not a matching channel: nothing injected
        await ws.expect("subscribed/order_book")
        await ws.subscribe("account_all_orders/101", auth=token)
        assert json.loads(await ws.ws.receive_str(timeout=5))["type"] == "subscribed/account_all_orders"
        assert await ws.ws.receive_str(timeout=5) == "garbage"  # right after the snapshot
    assert (await sim.state())["faults"]["inject_ws_frame"] is None


async def test_bad_ws_fault_bodies_are_refused_with_the_key_named(sim: SimProcess) -> None:
    cases = [
        ({"book_gap": 1}, "book_gap"),
        ({"book_gap": {"market_id": "1"}}, "book_gap.market_id"),
        ({"shutdown": {"close_in_ms": -1}}, "shutdown.close_in_ms"),
        ({"inject_ws_frame": {"channel": "", "text": "x"}}, "inject_ws_frame.channel"),
        ({"inject_ws_frame": {"channel": "order_book", "text": 5}}, "inject_ws_frame.text"),
        ({"inject_ws_frame": {"channel": "order_book", "text": "x", "count": 0}}, "inject_ws_frame.count"),
    ]
    for body, key in cases:
        refused = await sim.admin("POST", "/sim/faults", body, expect=400)
        assert refused["message"].startswith(key), (body, refused)
    await sim.faults(book_gap={"market_id": 1}, inject_ws_frame={"channel": "order_book", "text": "x"})
    cleared = (await sim.clear_faults())["faults"]
    assert (cleared["book_gap"], cleared["inject_ws_frame"]) == (None, None)


async def test_over_200_messages_a_minute_frames_are_refused_the_connection_stays(sim: SimProcess) -> None:
    client = await sim.signer(101)
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000020, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        assert json.loads(await ws.receive_str(timeout=5))["type"] == "connected"
        for _ in range(200):
            await ws.send_json({"type": "ping"})
        for _ in range(200):
            assert json.loads(await ws.receive_str(timeout=5)) == {"type": "pong"}
        await ws.send_json({"type": "subscribe", "channel": "order_book/1"})
        assert json.loads(await ws.receive_str(timeout=5)) == {"error": TOO_MANY}  # no snapshot
        await ws.send_json({"type": "ping"})
        assert json.loads(await ws.receive_str(timeout=5)) == {"error": TOO_MANY}
        # Transactions are not counted against the message budget.
        await ws.send_json({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx_info}})
        answer = json.loads(await ws.receive_str(timeout=5))
        assert (answer["type"], answer["code"]) == ("jsonapi/sendtx", 200)
        assert not ws.closed
    assert "over 200 client messages a minute" in sim.log()


async def test_a_connection_holds_at_most_100_subscriptions(sim: SimProcess) -> None:
    accounts = range(1000, 1100)
    await asyncio.gather(*(sim.register_account(a, api_keys={}) for a in accounts))
    async with sim.stream() as ws:
        for account in accounts:
            await ws.subscribe(f"account_all/{account}")
            await ws.expect("subscribed/account_all", account=account)
        await ws.subscribe("order_book/1")
        refused = await ws.expect_error(30012)
        assert refused["code"] == 30012
        await ws.send({"type": "unsubscribe", "channel": "account_all/1000"})
        await ws.expect("unsubscribed")
        await ws.subscribe("order_book/1")  # room again
        await ws.expect("subscribed/order_book")
    assert (await sim.state())["ws_subscriptions"] == {}
