"""Trading against the sim with the real lighter-sdk SignerClient: orders, fills, cancels, nonces."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import lighter
from lighter import models

from tests.fixtures.sim import SimProcess

BTC = 1
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
GTT = lighter.SignerClient.ORDER_TIME_IN_FORCE_GOOD_TILL_TIME
IOC = lighter.SignerClient.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
MIN_LOT = 20  # 0.00020 BTC at size_decimals 5


def ok(result: tuple[Any, Any, Any]) -> models.RespSendTx:
    _, resp, err = result
    assert err is None, err
    assert resp is not None and resp.code == 200, resp
    return models.RespSendTx.from_dict(resp.to_dict())


async def post_only(
    client: Any, coid: int, price: int, *, ask: bool = False, size: int = MIN_LOT, reduce_only: bool = False
) -> models.RespSendTx:
    return ok(
        await client.create_order(BTC, coid, size, price, ask, LIMIT, POST_ONLY, reduce_only=reduce_only)
    )


async def orders_by_coid(sim: SimProcess, client: Any, *coids: int) -> dict[int, models.Order]:
    body = await sim.get(
        "/api/v1/accountOrders",
        {"account_index": client.account_index, "client_order_indexes": ",".join(map(str, coids))},
        sim.auth_token(client),
    )
    return {o.client_order_index: o for o in models.Orders.from_dict(body).orders}


async def position(sim: SimProcess, account: int, market: int = BTC) -> models.AccountPosition | None:
    body = await sim.get("/api/v1/account", {"by": "index", "value": account})
    accounts = models.DetailedAccounts.from_dict(body).accounts
    return next((p for p in accounts[0].positions if p.market_id == market), None)


async def test_post_only_order_rests_then_fills_through_forced_trade(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000001, 949900)  # bid 94990.0
    book = models.OrderBookOrders.from_dict(
        await sim.get("/api/v1/orderBookOrders", {"market_id": BTC, "limit": 10})
    )
    assert [(o.price, o.remaining_base_amount, o.owner_account_index) for o in book.bids] == [
        ("94990.0", "0.00020", 101)
    ]

    trades = await sim.trade(BTC, "sell", "0.00020")
    assert [(t["price"], t["size"], t["bid_account_id"], t["bid_client_id"]) for t in trades] == [
        ("94990.0", "0.00020", 101, 11000000000001)
    ]

    order = (await orders_by_coid(sim, client, 11000000000001))[11000000000001]
    assert (order.status, order.filled_base_amount, order.remaining_base_amount) == (
        "filled",
        "0.00020",
        "0.00000",
    )
    pos = await position(sim, 101)
    assert pos is not None and (pos.sign, pos.position, pos.avg_entry_price) == (1, "0.00020", "94990.0")

    mine = models.Trades.from_dict(
        await sim.get("/api/v1/trades", {"sort_by": "timestamp", "limit": 10, "account_index": 101})
    )
    assert [t.bid_client_id for t in mine.trades] == [11000000000001]
    recent = models.Trades.from_dict(
        await sim.get("/api/v1/recentTrades", {"market_id": BTC, "limit": 5})
    )
    assert recent.trades[0].trade_id == mine.trades[0].trade_id


async def test_partial_fill_leaves_the_rest_open(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000002, 950100, ask=True, size=3 * MIN_LOT)
    trades = await sim.trade(BTC, "buy", "0.00020")
    assert [t["size"] for t in trades] == ["0.00020"]

    order = (await orders_by_coid(sim, client, 11000000000002))[11000000000002]
    assert (order.status, order.filled_base_amount, order.remaining_base_amount) == (
        "open",
        "0.00020",
        "0.00040",
    )
    active = models.Orders.from_dict(
        await sim.get(
            "/api/v1/accountActiveOrders", {"account_index": 101, "market_id": BTC}, sim.auth_token(client)
        )
    )
    assert [(o.client_order_index, o.remaining_base_amount) for o in active.orders] == [
        (11000000000002, "0.00040")
    ]
    pos = await position(sim, 101)
    assert pos is not None and (pos.sign, pos.position) == (-1, "0.00020")


async def test_cancel_by_client_index_and_by_order_index(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000003, 949000)
    await post_only(client, 11000000000004, 948000)
    ok(await client.cancel_order(BTC, 11000000000003))  # client order index (< 2**48)
    orders = await orders_by_coid(sim, client, 11000000000003, 11000000000004)
    assert orders[11000000000003].status == "canceled"
    order_index = orders[11000000000004].order_index
    assert order_index >= 1 << 48
    ok(await client.cancel_order(BTC, order_index))  # exchange order index
    assert (await orders_by_coid(sim, client, 11000000000004))[11000000000004].status == "canceled"
    inactive = models.Orders.from_dict(
        await sim.get(
            "/api/v1/accountInactiveOrders", {"account_index": 101, "limit": 10}, sim.auth_token(client)
        )
    )
    assert {o.client_order_index for o in inactive.orders} == {11000000000003, 11000000000004}


async def test_cancel_unknown_order_is_a_clear_400_and_keeps_the_nonce(sim: SimProcess) -> None:
    client = await sim.signer(101)
    _, resp, err = await client.cancel_order(BTC, 11000000000999)
    assert resp is None and "21123" in err and "order not found" in err
    nonce = models.NextNonce.from_dict(
        await sim.get("/api/v1/nextNonce", {"account_index": 101, "api_key_index": 3})
    )
    assert nonce.nonce == 0


async def test_cancel_all_immediate_scheduled_and_abort(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000011, 949000)
    await post_only(client, 11000000000012, 948000)
    ok(await client.cancel_all_orders(lighter.SignerClient.CANCEL_ALL_TIF_IMMEDIATE, 0))
    orders = await orders_by_coid(sim, client, 11000000000011, 11000000000012)
    assert {o.status for o in orders.values()} == {"canceled"}

    # Scheduled (the dead-man's switch), renewed, then aborted. Lighter takes a schedule 5 minutes to 15 days
    # ahead, so a shorter one is refused; its firing at T is in test_sim_engine (virtual clock): here it
    # would take 5 minutes.
    await post_only(client, 11000000000013, 949000)
    _, _, err = await client.cancel_all_orders(lighter.SignerClient.CANCEL_ALL_TIF_SCHEDULED,
                                               int(time.time() * 1000) + 10_000)
    assert err is not None and "scheduled cancel-all time must be 5 minutes to 15 days ahead" in str(err), err
    for ahead_ms in (360_000, 420_000):
        deadline_ms = int(time.time() * 1000) + ahead_ms
        ok(await client.cancel_all_orders(lighter.SignerClient.CANCEL_ALL_TIF_SCHEDULED, deadline_ms))
        assert (await sim.state())["accounts"]["101"]["cancel_all_time"] == deadline_ms
    ok(await client.cancel_all_orders(lighter.SignerClient.CANCEL_ALL_TIF_ABORT, 0))
    assert (await sim.state())["accounts"]["101"]["cancel_all_time"] == 0
    orders = await orders_by_coid(sim, client, 11000000000013)
    assert orders[11000000000013].status == "open"


async def test_nonce_desync_then_sdk_resyncs_after_invalid_nonce(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000021, 949000)
    # Another writer uses the same key behind the client's back: its local nonce is now stale.
    other = await sim.signer(101)
    await post_only(other, 11000000000022, 948000)
    _, resp, err = await client.create_order(BTC, 11000000000023, MIN_LOT, 947000, False, LIMIT, POST_ONLY)
    assert resp is None and "invalid nonce" in err
    # The SDK hard-refreshed its nonce from nextNonce on "invalid nonce": the next order goes through.
    await post_only(client, 11000000000023, 947000)
    orders = await orders_by_coid(sim, client, 11000000000021, 11000000000022, 11000000000023)
    assert {o.status for o in orders.values()} == {"open"}
    log = (await sim.txlog(101))["101"]
    assert [r["code"] for r in log] == [200, 200, 21104, 200]


async def test_post_only_that_would_cross_is_canceled_post_only(sim: SimProcess) -> None:
    client = await sim.signer(101)
    maker = await sim.signer(102)
    await post_only(maker, 21000000000001, 950000, ask=True)
    await post_only(client, 11000000000031, 950000)  # a bid at the ask: would take
    order = (await orders_by_coid(sim, client, 11000000000031))[11000000000031]
    assert order.status == "canceled-post-only"
    assert (await position(sim, 101)) is None or (await position(sim, 101)).sign == 0


async def test_reduce_only_that_would_grow_the_position_is_canceled(sim: SimProcess) -> None:
    client = await sim.signer(101)
    maker = await sim.signer(102)
    await post_only(maker, 21000000000002, 950000, ask=True)
    ok(
        await client.create_order(
            BTC, 11000000000041, MIN_LOT, 950000, False, LIMIT, IOC, reduce_only=True, order_expiry=0
        )
    )
    order = (await orders_by_coid(sim, client, 11000000000041))[11000000000041]
    assert order.status == "canceled-reduce-only"
    assert order.filled_base_amount == "0.00000"


async def test_ioc_chase_walks_up_until_filled(sim: SimProcess) -> None:
    maker = await sim.signer(102)
    await post_only(maker, 21000000000010, 950200, ask=True)
    hedger = await sim.signer(101)
    statuses = []
    for attempt, price in enumerate((950000, 950100, 950200, 950300)):
        coid = 12000000000050 + attempt
        ok(await hedger.create_order(BTC, coid, MIN_LOT, price, False, LIMIT, IOC, order_expiry=0))
        order = (await orders_by_coid(sim, hedger, coid))[coid]
        statuses.append(order.status)
        if order.status == "filled":
            break
    assert statuses == ["canceled", "canceled", "filled"]
    pos = await position(sim, 101)
    assert pos is not None and (pos.sign, pos.position, pos.avg_entry_price) == (1, "0.00020", "95020.0")


async def test_send_tx_batch_and_malformed_transactions(sim: SimProcess) -> None:
    client = await sim.signer(101)
    infos = []
    for i in range(2):
        _, tx_info, _, err = client.sign_create_order(
            BTC, 11000000000061 + i, MIN_LOT, 949000 - i * 10, 0, LIMIT, POST_ONLY, nonce=i, api_key_index=3
        )
        assert err is None
        infos.append(tx_info)
    batch = await client.send_tx_batch(tx_types=[14, 14], tx_infos=infos)
    strict = models.RespSendTxBatch.from_dict(batch.to_dict())
    assert strict.code == 200 and len(strict.tx_hash) == 2
    assert {
        o.status for o in (await orders_by_coid(sim, client, 11000000000061, 11000000000062)).values()
    } == {"open"}

    async with sim.raw_session() as http:
        for form, fragment in (
            ({"tx_type": "14", "tx_info": "not json"}, "tx_info"),
            ({"tx_type": "x", "tx_info": "{}"}, "tx_type"),
            ({"tx_type": "14", "tx_info": infos[0]}, "invalid nonce"),
        ):
            async with http.post(sim.url + "/api/v1/sendTx", data=form) as resp:
                body = await resp.json()
                assert resp.status == 400 and resp.content_type == "application/json"
                models.ResultCode.from_dict(body)
                assert fragment in body["message"]
        # Within a batch each key's nonces must follow one another: the venue's 21105 (troubleshooting page).
        gap = []
        for nonce in (2, 4):
            _, tx_info, _, err = client.sign_create_order(
                BTC, 11000000000063 + nonce, MIN_LOT, 948000, 0, LIMIT, POST_ONLY, nonce=nonce,
                api_key_index=3,
            )
            assert err is None
            gap.append(tx_info)
        form = {"tx_types": "[14, 14]", "tx_infos": json.dumps(gap)}
        async with http.post(sim.url + "/api/v1/sendTxBatch", data=form) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 21105


async def test_reset_clears_books_orders_positions_and_nonces(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000071, 949000)
    await sim.trade(BTC, "sell", "0.00020")
    assert (await position(sim, 101)) is not None
    await post_only(client, 11000000000072, 948000)
    await sim.reset()
    book = models.OrderBookOrders.from_dict(
        await sim.get("/api/v1/orderBookOrders", {"market_id": BTC, "limit": 5})
    )
    assert book.bids == [] and book.asks == []
    pos = await position(sim, 101)
    assert pos is None or pos.sign == 0
    nonce = models.NextNonce.from_dict(
        await sim.get("/api/v1/nextNonce", {"account_index": 101, "api_key_index": 3})
    )
    assert nonce.nonce == 0
    assert await sim.txlog(101) == {}
    assert await asyncio.to_thread(client.check_client) is None  # accounts and keys survive a reset


async def test_modify_order_moves_price_and_size(sim: SimProcess) -> None:
    client = await sim.signer(101)
    await post_only(client, 11000000000081, 949000)
    order = (await orders_by_coid(sim, client, 11000000000081))[11000000000081]
    _, resp, err = await client.modify_order(BTC, order.order_index, 2 * MIN_LOT, 948500)
    assert err is None and resp.code == 200
    moved = (await orders_by_coid(sim, client, 11000000000081))[11000000000081]
    assert (moved.price, moved.remaining_base_amount, moved.status) == ("94850.0", "0.00040", "open")


async def test_market_order_stops_at_its_worst_price(sim: SimProcess) -> None:
    maker = await sim.signer(102)
    await post_only(maker, 21000000000091, 950000, ask=True)
    await post_only(maker, 21000000000092, 951000, ask=True)
    taker = await sim.signer(101)
    ok(await taker.create_market_order(BTC, 12000000000091, 2 * MIN_LOT, 950500, False))
    order = (await orders_by_coid(sim, taker, 12000000000091))[12000000000091]
    assert (order.status, order.filled_base_amount) == ("canceled-too-much-slippage", "0.00020")
