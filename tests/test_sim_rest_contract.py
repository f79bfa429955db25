"""The simulator's REST answers against the captured corpus (tests/wire/rest/): same keys, same value types.

Every REST endpoint the bot uses (and `accountLimits`, which `hedgectl preflight` reads) is called on a real
simulator process; each answer is compared with a corpus body of the same endpoint, recursively: the same keys
and the same JSON types (int and float are one "number"). Keys the venue leaves out when they are zero
(`OMITTED_WHEN_ZERO`) may be present or absent on either side, but when the sim sends one it is never zero.

Where the corpus has older and newer captures, the newer is the reference (named per endpoint below). Where a
source trimmed its capture (ccxt drops fields: see the provenance table), the corpus keys must be in the sim's
answer with the same types, and the sim may send more ("superset"); everywhere else the key sets must match.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import lighter
import pytest

from tests.fixtures.sim import SimProcess
from tests.fixtures.wire import CORPUS_DIR, WireRecord, read_file

BTC = 1
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
IOC = lighter.SignerClient.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL

# Left out by the venue when zero / false (corpus "Facts the corpus proves" 5; trades of May-Jul 2026).
OMITTED_WHEN_ZERO = frozenset(
    {"maker_fee", "taker_fee", "maker_position_sign_changed", "taker_position_sign_changed"}
)


def corpus(path: str, line: int = 1) -> WireRecord:
    """One record of the corpus, by file (relative to tests/wire/) and 1-based line."""
    records = read_file(CORPUS_DIR / path)
    (record,) = [r for r in records if r.line == line]
    return record


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def shape_problems(sim: Any, venue: Any, *, superset: bool, path: str = "$") -> list[str]:
    """Where `sim` differs from `venue` in keys or JSON types (lists: every sim item vs the venue's first)."""
    if _type(sim) != _type(venue):
        return [f"{path}: sim {_type(sim)} {sim!r:.60}, venue {_type(venue)} {venue!r:.60}"]
    problems: list[str] = []
    if isinstance(venue, dict):
        sim_keys, venue_keys = set(sim) - OMITTED_WHEN_ZERO, set(venue) - OMITTED_WHEN_ZERO
        missing = sorted(venue_keys - sim_keys)
        extra = sorted(sim_keys - venue_keys)
        if missing:
            problems.append(f"{path}: keys the venue sends and the sim does not: {missing}")
        if extra and not superset:
            problems.append(f"{path}: keys the sim sends and the venue does not: {extra}")
        for key in sorted(set(sim) & OMITTED_WHEN_ZERO):
            if not sim[key]:
                problems.append(f"{path}.{key}: sent as {sim[key]!r}; the venue leaves it out when zero")
        for key in sorted(set(sim) & set(venue)):
            problems += shape_problems(sim[key], venue[key], superset=superset, path=f"{path}.{key}")
    elif isinstance(venue, list) and venue:
        for index, item in enumerate(sim):
            problems += shape_problems(item, venue[0], superset=superset, path=f"{path}[{index}]")
    return problems


def assert_shape(name: str, sim: Any, venue: WireRecord, *, superset: bool = False) -> None:
    problems = shape_problems(sim, venue.payload, superset=superset)
    where = f"{venue.file.relative_to(CORPUS_DIR)}:{venue.line}"
    assert not problems, f"{name} differs from the corpus ({where}):\n" + "\n".join(problems)


@dataclass
class Activity:
    """State the sim was driven into so that every answer has content to compare."""

    token: str
    resting_coid: int
    ended_coid: int


async def drive(sim: SimProcess) -> Activity:
    """101 rests a bid and an ask; 102 takes the ask (premium both sides: both fees non-zero); the sim's own
    taker (fee 0) then takes part of the bid: one open order, one filled order, trades of both kinds."""
    maker, taker = await sim.signer(101), await sim.signer(102)
    resting, ended = 11000000000701, 11000000000702
    _, _, err = await maker.create_order(BTC, resting, 20, 940000, False, LIMIT, POST_ONLY)
    assert err is None
    _, _, err = await maker.create_order(BTC, ended, 20, 960000, True, LIMIT, POST_ONLY)
    assert err is None
    _, _, err = await taker.create_order(BTC, 21000000000701, 20, 960000, False, LIMIT, IOC, order_expiry=0)
    assert err is None
    # Wait (bounded) for the IOC to execute before reading: the fill shows in the sim's state.
    async with asyncio.timeout(5):
        while not (await sim.state())["accounts"]["101"]["fills"]:  # noqa: ASYNC110 (no event for it)
            await asyncio.sleep(0.02)
    trades = await sim.trade(market_id=BTC, side="sell", size="0.00010")  # the sim's taker hits 101's bid
    assert trades
    return Activity(sim.auth_token(maker), resting, ended)


async def test_every_rest_answer_has_the_venues_keys_and_types(sim: SimProcess) -> None:
    act = await drive(sim)
    token = act.token

    # nextNonce: no captured body exists; the corpus has NautilusTrader's constructed one ({code, nonce}).
    assert_shape(
        "nextNonce",
        await sim.get("/api/v1/nextNonce", {"account_index": 101, "api_key_index": 3}),
        corpus("rest/nextNonce/nautilus_fixture.jsonl"),
    )
    # orderBookDetails: mainnet 2026-05-05 (the only capture).
    assert_shape(
        "orderBookDetails",
        await sim.get("/api/v1/orderBookDetails", {"market_id": BTC}),
        corpus("rest/orderBookDetails/nautilus_mainnet-2026-05-05.jsonl"),
    )
    # orderBooks: mainnet 2026-07-31 (newer than NautilusTrader's 2026-05-05).
    assert_shape(
        "orderBooks",
        await sim.get("/api/v1/orderBooks"),
        corpus("rest/orderBooks/hftbacktest_mainnet-2026-07-31.jsonl"),
    )
    # orderBookOrders: mainnet 2026-05-05 (newer than ccxt's 2025-11, which has no transaction_time).
    assert_shape(
        "orderBookOrders",
        await sim.get("/api/v1/orderBookOrders", {"market_id": BTC, "limit": 5}),
        corpus("rest/orderBookOrders/nautilus_mainnet-2026-05-05.jsonl"),
    )
    # recentTrades: mainnet 2026-05-05 (the only capture; the trade shape of WS trades of 2026-07 too).
    newest_trade = corpus("rest/recentTrades/nautilus_mainnet-2026-05-05.jsonl")
    recent = await sim.get("/api/v1/recentTrades", {"market_id": BTC, "limit": 10})
    assert len(recent["trades"]) == 2
    assert_shape("recentTrades", recent, newest_trade)
    # trades (an account's, with a token): the envelope against testnet 2025-12-22 (the only capture), each
    # trade against the newer trade shape of 2026-05-05 (the 2025-12 one predates the `_str` ids and
    # `transaction_time`).
    mine = await sim.get(
        "/api/v1/trades", {"account_index": 101, "sort_by": "timestamp", "limit": 10, "auth": token}
    )
    assert_shape("trades", {**mine, "trades": []}, corpus("rest/trades/ccxt_testnet-2025-12-22.jsonl"))
    for trade in mine["trades"]:
        assert_shape(
            "trades[]",
            trade,
            WireRecord(
                "rest", "trade", newest_trade.payload["trades"][0], newest_trade.file, newest_trade.line
            ),
        )

    # accountActiveOrders: testnet 2026-08-01, line 1 (one resting order).
    newest_orders = corpus("rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl")
    active = await sim.get("/api/v1/accountActiveOrders", {"account_index": 101}, token)
    assert [o["client_order_index"] for o in active["orders"]] == [act.resting_coid]
    assert_shape("accountActiveOrders", active, newest_orders)
    # accountInactiveOrders: the envelope against testnet 2025-12-22 (the only capture); its order lacks
    # transaction_time, integrator fields and order_flags, so each order is compared with the newer REST
    # order of 2026-08-01.
    inactive = await sim.get("/api/v1/accountInactiveOrders", {"account_index": 101, "limit": 10}, token)
    assert [o["client_order_index"] for o in inactive["orders"]] == [act.ended_coid]
    assert_shape(
        "accountInactiveOrders",
        {**inactive, "orders": []},
        corpus("rest/accountInactiveOrders/ccxt_testnet-2025-12-22.jsonl"),
    )
    assert_shape("accountInactiveOrders", inactive, newest_orders)
    # accountOrders: the corpus only has a schema fixture (ms timestamps, side "sell": not the venue's);
    # the answer is the same Orders body as accountActiveOrders, so it is compared with that capture.
    by_client = await sim.get(
        "/api/v1/accountOrders",
        {"account_index": 101, "client_order_indexes": f"{act.resting_coid},{act.ended_coid}"},
        token,
    )
    assert len(by_client["orders"]) == 2
    assert_shape("accountOrders", by_client, newest_orders)

    # account: testnet 2025-11 (ccxt trimmed it: superset). Its position has no margin_set_flag; the newest
    # position shape (WS testnet 2026-07-30) has it, and the sim sends that one.
    account = await sim.get("/api/v1/account", {"by": "index", "value": 101})
    assert_shape("account", account, corpus("rest/account/ccxt_testnet-2025-11.jsonl"), superset=True)

    # accountLimits: testnet 2026-07-30 (the only capture).
    limits = await sim.get("/api/v1/accountLimits", {"account_index": 101}, token)
    assert_shape("accountLimits", limits, corpus("rest/accountLimits/hftbacktest_testnet-2026-07-30.jsonl"))


async def test_every_rest_error_has_the_venues_shape_and_status(sim: SimProcess) -> None:
    client = await sim.signer(101)
    token = sim.auth_token(client)
    expired = "1000:101:3:" + token.split(":")[3]

    # A refused token: HTTP 401 and {code, message} (accountLimits, testnet 2026-07-30, line 2).
    venue = corpus("rest/accountLimits/hftbacktest_testnet-2026-07-30.jsonl", line=2)
    refused = await sim.get(
        "/api/v1/accountLimits", {"account_index": 101}, expired, expect=venue.http_status
    )
    assert refused["code"] == venue.payload["code"]
    assert_shape("accountLimits error", refused, venue)
    # The captured refusal itself: a token living 9 h, word for word, HTTP 401; 8 h is taken (line 1).
    too_long = await sim.get("/api/v1/accountLimits", {"account_index": 101},
                             sim.auth_token(client, ttl_s=9 * 3600), expect=venue.http_status)
    assert too_long == venue.payload
    await sim.get("/api/v1/accountLimits", {"account_index": 101}, sim.auth_token(client, ttl_s=8 * 3600))
    # No token: the venue's body word for word (accountActiveOrders, testnet 2026-08-01, line 3).
    venue = corpus("rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl", line=3)
    missing = await sim.get("/api/v1/accountActiveOrders", {"account_index": 101}, None, expect=400)
    assert missing == venue.payload

    # sendTx accepted (testnet 2026-07-30), then a replayed nonce (21104, same source).
    _, tx_info, _, err = client.sign_create_order(
        BTC, 11000000000801, 20, 940000, 0, LIMIT, POST_ONLY, nonce=0, api_key_index=3
    )
    assert err is None
    async with sim.raw_session() as http:
        async with http.post(
            sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": tx_info}
        ) as answer:
            accepted = await answer.json()
            assert answer.status == 200
        async with http.post(
            sim.url + "/api/v1/sendTx", data={"tx_type": "14", "tx_info": tx_info}
        ) as answer:
            replayed = await answer.json()
            assert answer.status == 400
    assert_shape("sendTx", accepted, corpus("rest/sendTx/hftbacktest_testnet-2026-07-30-accepted.jsonl"))
    assert len(accepted["tx_hash"]) == 80
    venue = corpus("rest/sendTx/hftbacktest_testnet-2026-07-30-invalid-nonce.jsonl")
    assert replayed == venue.payload  # {"code": 21104, "message": "invalid nonce"}


@pytest.mark.parametrize(
    ("sim_body", "problem"),
    [
        ({"code": 200, "orders": [{"order_index": "1"}]}, "sim str"),
        ({"code": 200}, "keys the venue sends and the sim does not"),
        ({"code": 200, "orders": [], "message": ""}, "keys the sim sends and the venue does not"),
        ({"code": 200, "orders": [{"maker_fee": 0}]}, "leaves it out when zero"),
    ],
)
def test_the_shape_comparison_catches_each_kind_of_drift(sim_body: dict[str, Any], problem: str) -> None:
    venue = {"code": 200, "orders": [{"order_index": 1}]}
    problems = shape_problems(sim_body, venue, superset=False)
    assert any(problem in p for p in problems), problems
