"""Fault injection, rate limits and speed bumps, as a client (and the server's tx log) sees them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import lighter
import pytest
from lighter import models

from tests.fixtures.sim import SimFactory, SimProcess

BTC = 1
MIN_LOT = 20
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
IOC = lighter.SignerClient.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL


async def next_nonce(sim: SimProcess, account: int) -> int:
    body = await sim.get("/api/v1/nextNonce", {"account_index": account, "api_key_index": 3})
    return models.NextNonce.from_dict(body).nonce


async def place(client: Any, coid: int, price: int, ask: bool = False) -> tuple[Any, Any]:
    _, resp, err = await client.create_order(BTC, coid, MIN_LOT, price, ask, LIMIT, POST_ONLY)
    return resp, err


async def test_drop_websockets_closes_every_socket_and_clients_can_reconnect(sim: SimProcess) -> None:
    async with sim.stream() as first, sim.stream() as second:
        await first.subscribe("order_book/1")
        await first.expect("subscribed/order_book")
        assert (await sim.state())["ws_connections"] == 2
        reply = await sim.faults(drop_websockets=True)
        assert reply["dropped_websockets"] == 2
        assert await first.closed() == 1001
        assert await second.closed() == 1001
    async with sim.stream() as again:
        await again.subscribe("order_book/1")
        assert (await again.expect("subscribed/order_book"))["channel"] == "order_book:1"
    await sim.faults(drop_websockets=True, drop_code=1011)
    bad = await sim.admin("POST", "/sim/faults", {"drop_websockets": True, "drop_code": 1000}, expect=400)
    assert "drop_code" in bad["message"]


async def test_silence_loses_the_updates_of_its_window_and_leaves_a_nonce_gap(sim: SimProcess) -> None:
    client = await sim.signer(101)
    async with sim.stream() as ws:
        await ws.subscribe("order_book/1")
        nonce = (await ws.expect("subscribed/order_book"))["order_book"]["nonce"]
        await sim.faults(silence_ws_s=0.5)
        resp, err = await place(client, 11000000000001, 949000)
        assert err is None and resp.code == 200
        with pytest.raises(TimeoutError):
            await ws.recv(wait_s=0.8)  # nothing at all arrives, and the silence runs out meanwhile
        resp, err = await place(client, 11000000000002, 948000)
        assert err is None
        update = await ws.expect("update/order_book")
        # The silenced update is gone for good: this one does not continue the snapshot's nonce.
        assert update["order_book"]["begin_nonce"] > nonce
        assert update["order_book"]["bids"] == [{"price": "94800.0", "size": "0.00020"}]


async def test_reject_next_sendtx_changes_nothing_and_keeps_the_nonce(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await sim.faults(reject_next_sendtx=2, code=21999, message="injected outage")
    for coid in (11000000000011, 11000000000012):
        resp, err = await place(client, coid, 949000)
        assert resp is None and "21999" in err and "injected outage" in err
    assert await next_nonce(sim, 101) == 0
    resp, err = await place(client, 11000000000013, 949000)  # the SDK rolled its nonce back on the 400
    assert err is None and resp.code == 200
    assert await next_nonce(sim, 101) == 1
    assert (await sim.state())["faults"]["reject_next_sendtx"] is None


async def _sequencer_dropped(sim: SimProcess, account: int, tx_hash: str) -> dict[str, Any]:
    """The server's record of `tx_hash` once its execution time has come and the sequencer dropped it."""
    async with asyncio.timeout(5):
        while True:
            records = [r for r in (await sim.txlog(account)).get(str(account), []) if r["tx_hash"] == tx_hash]
            if records and "sequencer" in records[0]["message"]:
                return records[0]
            await asyncio.sleep(0.02)


async def test_sequencer_reject_answers_200_and_no_order_ever_appears(sim: SimProcess) -> None:
    """HTTP 200 from sendTx means accepted by the API, not executed: the sequencer may still drop it."""
    client = await sim.signer(101)
    token = sim.auth_token(client)
    await sim.faults(sequencer_reject_next={"count": 1, "account_index": 101, "consume_nonce": True})
    resp, err = await place(client, 11000000000051, 949000)
    assert err is None and resp.code == 200 and len(resp.tx_hash) == 80  # a normal-looking answer
    record = await _sequencer_dropped(sim, 101, resp.tx_hash)
    assert record["status"] == "accepted" and record["executed_us"] is None
    lookup = {"account_index": 101, "client_order_indexes": 11000000000051}
    assert (await sim.get("/api/v1/accountOrders", lookup, token))["orders"] == []
    assert await next_nonce(sim, 101) == 1  # consume_nonce: the nonce is gone
    resp, err = await place(client, 11000000000052, 949000)  # the fault is used up
    assert err is None
    lookup["client_order_indexes"] = 11000000000052
    assert [o["status"] for o in (await sim.get("/api/v1/accountOrders", lookup, token))["orders"]] == [
        "open"
    ]


async def test_sequencer_reject_without_consuming_the_nonce_puts_the_next_nonce_ahead(
    sim: SimProcess,
) -> None:
    client = await sim.signer(101)
    await sim.faults(sequencer_reject_next={"count": 1, "consume_nonce": False})
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000061, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    async with sim.raw_session() as http:
        async with http.post(
            sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": tx_info}
        ) as answer:
            body = await answer.json()
        assert answer.status == 200 and body["code"] == 200
        record = await _sequencer_dropped(sim, 101, body["tx_hash"])
        assert "nonce not consumed" in record["message"]
        assert await next_nonce(sim, 101) == 0
        _, ahead, _, err = client.sign_create_order(
            BTC, 11000000000062, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=1, api_key_index=3
        )
        assert err is None
        async with http.post(sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": ahead}) as answer:
            assert answer.status == 400
            assert await answer.json() == {"code": 21104, "message": "invalid nonce"}


async def test_reject_probability_filtered_by_account(sim: SimProcess) -> None:
    a, b = await sim.signer(101), await sim.signer(102)
    await sim.faults(reject_sendtx_probability=1.0, account_index=102)
    resp, err = await place(a, 11000000000021, 949000)
    assert err is None and resp.code == 200
    resp, err = await place(b, 21000000000021, 951000, ask=True)
    assert resp is None and "29500" in err
    await sim.clear_faults()
    resp, err = await place(b, 21000000000022, 951000, ask=True)
    assert err is None and resp.code == 200


async def test_injected_http_errors_latency_and_bad_fault_bodies(sim: SimProcess) -> None:
    await sim.faults(http_error_next=2, status=503, paths=["/api/v1/sendTx"])
    async with sim.raw_session() as http:
        assert (await sim.get("/api/v1/orderBooks"))["code"] == 200  # other paths untouched
        for _ in range(2):
            async with http.post(sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": "{}"}) as resp:
                assert resp.status == 503 and resp.content_type == "application/json"
                assert (await resp.json())["code"] == 29500
        async with http.post(sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": "{}"}) as resp:
            assert resp.status == 400  # the fault is used up: a normal (malformed tx) answer
    await sim.faults(http_error_next=1, status=429)
    body = await sim.get("/api/v1/orderBooks", expect=429)
    assert body == {"code": 23000, "message": "too many requests"}

    await sim.faults(latency_ms=300)
    assert (await sim.get("/api/v1/orderBooks"))["code"] == 200  # delayed, not lost or altered
    await sim.faults(latency_ms=10_000)
    slow = asyncio.ensure_future(sim.get("/"))
    await sim.state()  # admin routes carry no injected latency: answered while the REST read still waits
    assert not slow.done()  # the latency holds the answer back (an order of answers, not a duration)
    slow.cancel()
    huge = await sim.admin(
        "POST", "/sim/trade", {"market_id": 1, "side": "buy", "size": "1e999999"}, expect=400
    )
    assert "size" in huge["message"]

    bad = await sim.admin("POST", "/sim/faults", {"explode": True}, expect=400)
    assert "explode" in bad["message"]
    bad = await sim.admin("POST", "/sim/faults", {"http_error_next": 1, "status": 404}, expect=400)
    assert "status" in bad["message"]
    cleared = await sim.clear_faults()
    assert cleared["faults"]["latency_ms"] == 0


async def test_blackholed_sendtx_executes_but_is_never_answered(sim: SimProcess) -> None:
    client = await sim.signer(101)
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000031, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    await sim.faults(blackhole_next_sendtx=1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as http:
        with pytest.raises(TimeoutError):
            await http.post(sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": tx_info})
    # The ambiguous outcome: the order exists although the client never heard back.
    body = await sim.get(
        "/api/v1/accountOrders",
        {"account_index": 101, "client_order_indexes": 11000000000031},
        sim.auth_token(client),
    )
    assert [o.status for o in models.Orders.from_dict(body).orders] == ["open"]
    record = (await sim.txlog(101))["101"][-1]
    assert record["answered_us"] is None and "blackholed" in record["message"]
    assert await next_nonce(sim, 101) == 1


async def test_a_blackholed_websocket_sendtx_executes_and_no_answer_frame_ever_comes(sim: SimProcess) -> None:
    client = await sim.signer(101)
    signed = []
    for nonce in range(3):
        _, tx_info, _, err = client.sign_create_order(
            BTC, 11000000000041 + nonce, MIN_LOT, 949000, 0, LIMIT, POST_ONLY, nonce=nonce, api_key_index=3
        )
        assert err is None
        signed.append({"tx_type": 14, "tx_info": tx_info})
    async with sim.stream() as ws:
        await sim.faults(blackhole_next_sendtx=1, account_index=102)  # another account's: 101 is answered
        await ws.send({"type": "jsonapi/sendtx", "data": {"id": "other", **signed[0]}})
        assert (await ws.expect("jsonapi/sendtx"))["id"] == "other"
        await sim.faults(blackhole_next_sendtx=1, account_index=101)
        await ws.send({"type": "jsonapi/sendtx", "data": {"id": "swallowed", **signed[1]}})
        await ws.send({"type": "jsonapi/sendtx", "data": {"id": "after", **signed[2]}})
        # Answers come in order on one socket: the next one is the later send's, so none came for the first.
        assert (await ws.expect("jsonapi/sendtx"))["id"] == "after"
    body = await sim.get(
        "/api/v1/accountOrders",
        {"account_index": 101, "client_order_indexes": 11000000000042},
        sim.auth_token(client),
    )
    assert [o.status for o in models.Orders.from_dict(body).orders] == ["open"]  # it executed
    swallowed = (await sim.txlog(101))["101"][1]
    assert swallowed["answered_us"] is None and "blackholed" in swallowed["message"]
    assert (await sim.admin("GET", "/sim/faults"))["faults"]["blackhole_next_sendtx"] is None  # used up


async def test_rate_limit_answers_429_per_account_and_tier(sim_factory: SimFactory) -> None:
    sim = await sim_factory(
        {
            "rate_limits": {"enabled": True, "standard_per_minute": 5},
            "accounts": [
                {"account_index": 101, "tier": "standard", "collateral": "1000"},
                {"account_index": 102, "tier": "premium", "collateral": "1000"},
            ],
        }
    )
    client = await sim.signer(101)
    resp, err = await place(client, 11000000000041, 949000)  # the SDK's nextNonce + sendTx: 2 of 5
    assert err is None and resp.code == 200
    for _ in range(3):
        await sim.get("/api/v1/account", {"by": "index", "value": 101})
    body = await sim.get("/api/v1/nextNonce", {"account_index": 101, "api_key_index": 3}, expect=429)
    assert body == {"code": 23000, "message": "too many requests"}
    with pytest.raises(lighter.ApiException) as raised:
        await place(client, 11000000000042, 949000)
    assert raised.value.status == 429
    # Premium account 102 has its own, weighted budget; admin routes are never limited.
    for _ in range(10):
        await sim.get("/api/v1/nextNonce", {"account_index": 102, "api_key_index": 3})
    for _ in range(10):
        await sim.state()


async def test_a_shared_budget_429s_b_once_a_spent_the_standard_minute(sim_factory: SimFactory) -> None:
    """`sim.rate_limits.shared`: 101 and 102 (sub-accounts of one L1 address) spend one Standard budget of 60
    requests a minute; 103, outside the group, keeps its own. The minute cannot roll over during the test:
    its 60 requests are answered long before."""
    standard = [{"account_index": a, "tier": "standard", "collateral": "1000"} for a in (101, 102, 103)]
    sim = await sim_factory({"rate_limits": {"enabled": True, "shared": [[101, 102]]}, "accounts": standard})
    a = await sim.signer(101)
    resp, err = await place(a, 11000000000051, 949000)  # the SDK's nextNonce + sendTx: 2 of the 60
    assert err is None and resp.code == 200
    for _ in range(58):
        await sim.get("/api/v1/account", {"by": "index", "value": 101})
    await sim.get("/api/v1/account", {"by": "index", "value": 101}, expect=429)
    body = await sim.get("/api/v1/account", {"by": "index", "value": 102}, expect=429)
    assert body == {"code": 23000, "message": "too many requests"}
    b = await sim.signer(102)
    with pytest.raises(lighter.ApiException) as raised:
        await place(b, 11000000000052, 949000)
    assert raised.value.status == 429
    await sim.get("/api/v1/account", {"by": "index", "value": 103})  # 200: not in the group


async def test_speed_bumps_delay_execution_not_the_answer_and_keep_account_order(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(
        {
            "speed_bumps": {"enabled": True},
            "accounts": [
                {"account_index": 101, "tier": "standard", "collateral": "100000"},
                {"account_index": 102, "tier": "premium", "collateral": "100000"},
            ],
        }
    )
    standard, premium = await sim.signer(101), await sim.signer(102)
    async with sim.stream() as ws:
        for signer in (standard, premium):
            await ws.subscribe(f"account_all_orders/{signer.account_index}", auth=sim.auth_token(signer))
            await ws.expect("subscribed/account_all_orders")
        resp, err = await place(standard, 11000000000051, 949000)
        assert err is None
        strict = models.RespSendTx.from_dict(resp.to_dict())
        # Premium: an IOC (taker, 200 ms) then a post-only (maker, 0 ms) must execute in that order.
        _, _, err = await premium.create_order(
            BTC, 21000000000051, MIN_LOT, 940000, True, LIMIT, IOC, order_expiry=0
        )
        assert err is None
        resp, err = await place(premium, 21000000000052, 951000, ask=True)
        assert err is None
        for _ in range(3):
            await ws.expect("update/account_all_orders", wait_s=3)
    log = await sim.txlog()
    [maker_std] = log["101"]
    taker_prem, maker_prem = log["102"]
    assert maker_std["kind"] == "maker" and maker_std["delay_ms"] == 200
    assert maker_std["answered_us"] - maker_std["arrival_us"] < 100_000  # answered at once
    assert maker_std["executed_us"] - maker_std["arrival_us"] >= 200_000  # executed after the bump
    assert strict.predicted_execution_time_ms == maker_std["arrival_us"] // 1000 + 200
    assert (taker_prem["kind"], taker_prem["delay_ms"], maker_prem["delay_ms"]) == ("taker", 200, 0)
    assert taker_prem["executed_us"] - taker_prem["arrival_us"] >= 200_000
    assert maker_prem["executed_us"] >= taker_prem["executed_us"]  # never overtakes the earlier taker
