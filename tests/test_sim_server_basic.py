"""The sim as the real lighter-sdk sees it: status, keys, check_client, nonces, metadata."""

from __future__ import annotations

import asyncio
import json

import lighter
from lighter import models

from tests.fixtures.sim import SimFactory, SimProcess


async def test_check_client_passes_for_registered_key_and_fails_for_another(sim: SimProcess) -> None:
    client = await sim.signer(101)
    assert await asyncio.to_thread(client.check_client) is None

    stranger_private, _ = lighter.create_api_key()[:2]
    stranger = lighter.SignerClient(
        url=sim.url, account_index=102, api_private_keys={7: stranger_private}, chain_id=304
    )
    try:
        error = await asyncio.to_thread(stranger.check_client)
    finally:
        await stranger.close()
    assert error is not None and "no api key returned for index 7" in error


async def test_status_next_nonce_and_apikeys_validate_strictly(sim: SimProcess) -> None:
    client = await sim.signer(101)
    status = await lighter.RootApi(client.api_client).status()
    assert status.status == 200
    nonce = await client.tx_api.next_nonce(account_index=101, api_key_index=3)
    models.NextNonce.from_dict(nonce.to_dict())
    assert nonce.nonce == 0
    keys = await lighter.AccountApi(client.api_client).apikeys(account_index=101)
    strict = models.AccountApiKeys.from_dict(keys.to_dict())
    assert [(k.account_index, k.api_key_index) for k in strict.api_keys] == [(101, 3)]
    assert strict.api_keys[0].public_key == sim_public_key(sim, 101)


def sim_public_key(sim: SimProcess, account: int) -> str:
    return json.loads((sim.state_dir / "api_keys.json").read_text())[str(account)]["3"]


async def test_market_metadata_and_account_validate_strictly(sim: SimProcess) -> None:
    details = models.OrderBookDetails.from_dict(await sim.get("/api/v1/orderBookDetails"))
    by_symbol = {d.symbol: d for d in details.order_book_details}
    assert (by_symbol["ETH"].market_id, by_symbol["ETH"].size_decimals, by_symbol["ETH"].price_decimals) == (
        0,
        4,
        2,
    )
    assert (by_symbol["BTC"].market_id, by_symbol["BTC"].size_decimals, by_symbol["BTC"].price_decimals) == (
        1,
        5,
        1,
    )
    assert by_symbol["BTC"].min_base_amount == "0.00020"
    one = models.OrderBookDetails.from_dict(await sim.get("/api/v1/orderBookDetails", {"market_id": 1}))
    assert [d.symbol for d in one.order_book_details] == ["BTC"]
    books = models.OrderBooks.from_dict(await sim.get("/api/v1/orderBooks"))
    assert {(b.symbol, b.supported_size_decimals) for b in books.order_books} == {("ETH", 4), ("BTC", 5)}
    account = models.DetailedAccounts.from_dict(
        await sim.get("/api/v1/account", {"by": "index", "value": 102})
    )
    assert account.accounts[0].index == 102 and account.accounts[0].positions == []
    models.Status.from_dict(await sim.get("/"))
    models.ZkLighterInfo.from_dict(await sim.get("/info"))


async def test_auth_token_checks_on_private_reads(sim: SimProcess) -> None:
    client = await sim.signer(101)
    good = sim.auth_token(client)
    params = {"account_index": 101}
    models.Orders.from_dict(await sim.get("/api/v1/accountActiveOrders", params, good))
    expiry, account, key, sig = good.split(":")
    wrong = {
        "garbage": "not-a-token",
        "expired": f"1000:{account}:{key}:{sig}",
        "other account": sim.auth_token(await sim.signer(102)),
        "unknown key": f"{expiry}:{account}:9:{sig}",
    }
    for why, token in wrong.items():
        # The venue's refusal of a token: HTTP 401, 20013 "invalid auth: ..." (captured on accountLimits).
        body = await sim.get("/api/v1/accountActiveOrders", params, token, expect=401)
        assert body["code"] == 20013 and body["message"].startswith("invalid auth: "), why
        assert set(body) == {"code", "message"}
    # No token at all: the venue's exact body (captured on accountActiveOrders).
    no_token = {
        "code": 20001,
        "message": "invalid param : auth query param and Authorization header are empty",
    }
    inactive = await sim.get(
        "/api/v1/accountInactiveOrders", {"account_index": 101, "limit": 5}, None, expect=400
    )
    assert inactive == no_token
    assert await sim.get("/api/v1/accountOrders", {"client_order_indexes": "1"}, None, expect=400) == no_token
    orders = await sim.get(
        "/api/v1/accountOrders", {"client_order_indexes": "1,2"}, good
    )  # account from token
    assert models.Orders.from_dict(orders).orders == []


async def test_every_authenticated_read_takes_the_token_as_the_auth_query_parameter(sim: SimProcess) -> None:
    token = sim.auth_token(await sim.signer(101))
    reads = {
        "/api/v1/accountActiveOrders": {"account_index": 101},
        "/api/v1/accountInactiveOrders": {"account_index": 101, "limit": 5},
        "/api/v1/accountOrders": {"client_order_indexes": "1,2"},  # the account comes from the token
        "/api/v1/accountLimits": {"account_index": 101},
        "/api/v1/trades": {"account_index": 101, "sort_by": "timestamp", "limit": 5},
    }
    for path, params in reads.items():
        assert (await sim.get(path, {**params, "auth": token}))["code"] == 200, path
        refused = await sim.get(path, {**params, "auth": "1000:101:3:" + "ab" * 40}, expect=401)
        assert refused["code"] == 20013, path  # a token in the query is checked like the header


async def test_malformed_params_unknown_routes_and_unknown_accounts_are_json_errors(sim: SimProcess) -> None:
    for path, params, fragment in (
        ("/api/v1/orderBookOrders", {"market_id": 1}, "limit"),
        ("/api/v1/orderBookOrders", {"market_id": "x", "limit": 5}, "market_id"),
        ("/api/v1/recentTrades", {"market_id": 1, "limit": 0}, "limit"),
        ("/api/v1/account", {"by": "name", "value": "x"}, "by"),
        ("/api/v1/nextNonce", {"account_index": 101}, "api_key_index"),
        ("/api/v1/trades", {"sort_by": "timestamp", "limit": 5, "sort_dir": "up"}, "sort_dir"),
        ("/api/v1/trades", {"sort_by": "timestamp", "limit": 5, "cursor": "@@@"}, "cursor"),
        (
            "/api/v1/accountOrders",
            {"account_index": 101, "client_order_indexes": "a,b"},
            "client_order_indexes",
        ),
    ):
        body = await sim.get(path, params, expect=400)
        assert body["code"] == 20001 and fragment in body["message"], (path, body)
    assert (await sim.get("/api/v1/nope", expect=404))["code"] == 404
    missing = await sim.get("/api/v1/apikeys", {"account_index": 999}, expect=400)
    assert missing == {"code": 21100, "message": "account not found"}
    assert (await sim.get("/api/v1/orderBookOrders", {"market_id": 7, "limit": 5}, expect=400))[
        "code"
    ] == 21901  # invented (errors.py): the venue's code for an unknown market is not captured


async def test_register_account_over_admin_route_persists_its_key(sim: SimProcess) -> None:
    reply = await sim.register_account(105, tier="standard", collateral="2500")
    assert reply["api_key_indexes"] == [3]
    client = await sim.signer(105)
    assert await asyncio.to_thread(client.check_client) is None
    assert "105" in json.loads((sim.state_dir / "api_keys.json").read_text())
    state = await sim.state()
    assert state["accounts"]["105"]["tier"] == "standard"
    bad = await sim.admin("POST", "/sim/accounts", {"account_index": 1, "api_keys": {}}, expect=400)
    assert "account_index" in bad["message"]
    bad = await sim.admin(
        "POST", "/sim/accounts", {"account_index": 106, "api_keys": {"3": "0xabc"}}, expect=400
    )
    assert "api_keys.3" in bad["message"]


async def test_account_limits_and_account_type_tell_the_tier(sim_factory: SimFactory) -> None:
    """accountLimits (lighter-sdk 1.1.8 AccountLimits) and the account answer's account_type, per tier."""
    sim = await sim_factory(
        {
            "accounts": [
                {"account_index": 101, "tier": "premium", "collateral": "1000"},
                {"account_index": 102, "tier": "standard", "collateral": "1000"},
            ],
        }
    )
    expected = {101: ("premium", 28, 196, 1), 102: ("standard", 0, 0, 0)}  # default fees 0.000028 / 0.000196
    for account, (tier, maker, taker, account_type) in expected.items():
        token = sim.auth_token(await sim.signer(account))
        limits = await sim.get("/api/v1/accountLimits", {"account_index": account}, token)
        assert (limits["code"], limits["user_tier"], limits["user_tier_name"]) == (200, tier, tier)
        assert (limits["current_maker_fee_tick"], limits["current_taker_fee_tick"]) == (maker, taker)
        parsed = models.AccountLimits.from_dict(limits)
        assert parsed.user_tier == tier and parsed.current_taker_fee_tick == taker
        answer = await sim.get("/api/v1/account", {"by": "index", "value": account})
        assert answer["accounts"][0]["account_type"] == account_type
    refused = await sim.get("/api/v1/accountLimits", {"account_index": 101}, None, expect=400)
    assert refused["code"] == 20001
