"""Wire contract of the adapter: captured Lighter REST bodies (tests/wire/rest/) through lighter-sdk's own
deserialisation and the adapter's answer functions, the ones its readers and its sender call.

Expected values were read off the payload by eye at the file and line named beside them; fees by hand as
rate x 1e-6 x size x price; order times as `transaction_time` µs / 1000, else seconds x 1000.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any, cast

import pytest
from lighter.exceptions import ApiException, BadRequestException

from hedge_strategy.exchange.errors import RefusalKind
from hedge_strategy.exchange.events import EndReason, Side, VenueState
from hedge_strategy.exchange.preflight_reads import answer_problem, limits_tier
from hedge_strategy.exchange.reads import (
    AccountReader,
    book_prices_of,
    checked_answer,
    fills_of,
    markets_of,
    open_positions_of,
    orders_of,
)
from hedge_strategy.exchange.rest import VenueError, error_details
from hedge_strategy.exchange.sender import SendStatus, classify_answer, classify_failure, nonce_of
from hedge_strategy.exchange.throttle import RequestThrottle
from tests.test_wire_contract_adapter import fill_facts, order_facts
from tests.test_wire_contract_kit import record, rest_body, sdk_answer, skips

__all__ = ["skips"]  # the fixture, imported for pytest


async def test_account_positions(skips: list[str]) -> None:
    # rest/account/ccxt_testnet-2025-11.jsonl:1: account 1077 long 18.0193 ETH (sign 1)
    held = open_positions_of(await rest_body("rest/account/ccxt_testnet-2025-11.jsonl", 1), 1077)
    assert list(held) == [0]
    eth = held[0]
    assert (eth.account_index, eth.size, eth.avg_entry_price, eth.unrealized_pnl, eth.realized_pnl) == (
        1077, D("18.0193"), D("2669.84"), D("6197.829558"), D("0.000000"))
    # rest/account/nautilus_fixture.jsonl:1: BTC listed flat (sign 1, "0.00000"): no open position
    assert open_positions_of(await rest_body("rest/account/nautilus_fixture.jsonl", 1), 123456) == {}
    assert skips == []


async def test_active_inactive_and_client_index_orders(skips: list[str]) -> None:
    active = "rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl"
    # line 1: one resting post-only bid, side ""; its time is transaction_time (µs), not updated_at (s)
    assert [order_facts(o) for o in orders_of(await rest_body(active, 1), 516)] == [
        (516, 1, 178554256601, 844424912956320, Side.BUY, VenueState.LIVE, None,
         D("56608.2"), D("0.00100"), D("0.00000"), D("0.00100"), 1785542568396)]
    assert orders_of(await rest_body(active, 2), 516) == []  # line 2: "orders": []
    # line 3: no auth token: code 20001; in a 200 body the reader raises, in a 400 the SDK does
    with pytest.raises(VenueError) as refused:
        checked_answer("accountActiveOrders", await rest_body(active, 3))
    assert refused.value.code == 20001
    with pytest.raises(BadRequestException) as raised:
        await sdk_answer(record(active, 3), 400)
    assert error_details(raised.value) == (
        400, 20001, "invalid param : auth query param and Authorization header are empty")

    # rest/accountInactiveOrders/ccxt_testnet-2025-12-22.jsonl:1: an IOC sell the venue ended for margin; no
    # transaction_time (Dec 2025): its time is updated_at, seconds
    inactive = orders_of(await rest_body("rest/accountInactiveOrders/ccxt_testnet-2025-12-22.jsonl", 1), 1077)
    assert [order_facts(o) for o in inactive] == [
        (1077, 0, 0, 281474977354074, Side.SELL, VenueState.CANCELED, EndReason.MARGIN,
         D("2221.60"), D("36.0386"), D("0.0000"), D("0.0000"), 1766387932000)]
    assert inactive[0].venue_status == "canceled-margin-not-allowed"

    # rest/accountOrders/nautilus_schema-fixture.jsonl:1 (docs): ms timestamps stay ms, side "sell"
    by_client = orders_of(await rest_body("rest/accountOrders/nautilus_schema-fixture.jsonl", 1), 712440)
    assert [order_facts(o) for o in by_client] == [
        (712440, 0, 42, 281476929510110, Side.SELL, VenueState.LIVE, None,
         D("2352.74"), D("0.0050"), D("0.0000"), D("0.0050"), 1777941383576)]
    assert skips == []


async def test_account_limits(skips: list[str]) -> None:
    limits = "rest/accountLimits/hftbacktest_testnet-2026-07-30.jsonl"
    # line 1: a standard account, both fee ticks 0. Preflight reads the body as sent; the SDK model agrees.
    sent = record(limits, 1).payload
    assert (limits_tier(sent), answer_problem(200, sent)) == ("standard", None)
    assert (sent["current_maker_fee_tick"], sent["current_taker_fee_tick"]) == (0, 0)
    assert limits_tier(await rest_body(limits, 1)) == "standard"
    # line 2: a token past the 8 h ceiling, HTTP 401 code 20013, as preflight and the adapter's reader tell it
    refused = record(limits, 2)
    assert answer_problem(401, refused.payload) == "HTTP 401 code 20013: invalid auth: invalid deadline"
    with pytest.raises(ApiException) as raised:
        await sdk_answer(refused)
    assert error_details(raised.value) == (401, 20013, "invalid auth: invalid deadline")
    assert skips == []


async def test_trades_and_recent_trades(skips: list[str]) -> None:
    # rest/trades/ccxt_testnet-2025-12-22.jsonl:1: testnet, no fee field, both client ids 0 (none)
    testnet = await rest_body("rest/trades/ccxt_testnet-2025-12-22.jsonl", 1)
    assert [fill_facts(f) for f in fills_of(testnet, 1077)] == [
        (1077, 0, 17609, 562949952870533, None, Side.BUY, D("10.2304"), D("2958.75"), False, D(0),
         1766386112741)]
    assert [fill_facts(f) for f in fills_of(testnet, 20)] == [
        (20, 0, 17609, 281474977339869, None, Side.SELL, D("10.2304"), D("2958.75"), True, D(0),
         1766386112741)]
    # rest/recentTrades/nautilus_mainnet-2026-05-05.jsonl:1: 1.18 USD notional, maker_fee 28 (the bid, since
    # is_maker_ask is false): 28 x 1e-6 x 0.0005 x 2361.31 = 0.00003305834 USDC; the taker's fee left out
    recent = await rest_body("rest/recentTrades/nautilus_mainnet-2026-05-05.jsonl", 1)
    assert [fill_facts(f) for f in fills_of(recent, 281474976639642)] == [
        (281474976639642, 0, 19211490282, 562947905454831, 410940644, Side.BUY, D("0.0005"), D("2361.31"),
         True, D("0.00003305834"), 1777945103092)]
    assert [fill_facts(f) for f in fills_of(recent, 719347)] == [
        (719347, 0, 19211490282, 281476929689557, None, Side.SELL, D("0.0005"), D("2361.31"), False, D(0),
         1777945103092)]
    assert skips == []


async def test_market_details_book_orders_and_nonce(skips: list[str]) -> None:
    # rest/orderBookDetails/nautilus_mainnet-2026-05-05.jsonl:1
    (eth,) = markets_of(await rest_body("rest/orderBookDetails/nautilus_mainnet-2026-05-05.jsonl", 1))
    assert (eth.symbol, eth.market_id, eth.size_decimals, eth.price_decimals, eth.min_base_amount,
            eth.min_quote_amount) == ("ETH", 0, 4, 2, D("0.0050"), D("10.000000"))
    # rest/orderBookOrders/ccxt_mainnet-2025-11.jsonl:1 and nautilus_mainnet-2026-05-05.jsonl:1
    assert book_prices_of(await rest_body("rest/orderBookOrders/ccxt_mainnet-2025-11.jsonl", 1)) == (
        [D("3429.80")], [D("3430.00")])
    assert book_prices_of(await rest_body("rest/orderBookOrders/nautilus_mainnet-2026-05-05.jsonl", 1)) == (
        [D("2361.17")], [D("2361.32")])
    # rest/nextNonce/nautilus_fixture.jsonl:1 (constructed)
    assert nonce_of(await sdk_answer(record("rest/nextNonce/nautilus_fixture.jsonl", 1))) == 1234567890
    assert skips == []


ACCEPTED = "rest/sendTx/hftbacktest_testnet-2026-07-30-accepted.jsonl"


@pytest.mark.parametrize(("line", "tx_hash_start"), [
    (1, "52857ec7f2fd7703"), (2, "f5c9881e01015ec1"), (3, "e38dd4f2150419f1"),
    (4, "5050882aba3f8ac0"),  # accepted (HTTP 200, code 200) and yet no order ever appeared (README fact 14)
    (5, "8523d6a4b72c5fa9"), (6, "a2bbec940be3f844"), (7, "6241732c63281765"),
])
async def test_send_accepted(line: int, tx_hash_start: str) -> None:
    result = classify_answer(await sdk_answer(record(ACCEPTED, line)), "signed")
    assert (result.status, result.code, result.refusal) == (SendStatus.ACCEPTED, 200, None)
    assert result.tx_hash is not None and result.tx_hash.startswith(tx_hash_start)
    assert result.message == '{"ratelimit": "Ratelimit is off"}'


@pytest.mark.parametrize(("path", "line", "code", "kind", "cause"), [
    ("rest/sendTx/hftbacktest_testnet-2026-07-30-invalid-nonce.jsonl", 1, 21104, RefusalKind.NONCE,
     "invalid nonce"),
    ("rest/sendTx/hftbacktest_testnet-2026-07-30-invalid-nonce.jsonl", 2, 21104, RefusalKind.NONCE,
     "invalid nonce"),
    ("rest/sendTx/lighter-python-issue-60.jsonl", 1, 400, RefusalKind.NONCE, "invalid nonce"),
    ("rest/sendTx/lighter-go-issue-19.jsonl", 1, 21120, RefusalKind.FINAL, "invalid signature"),
    ("rest/sendTx/lighter-python-issue-103.jsonl", 1, 21136, RefusalKind.FINAL, "invalid public key"),
    ("rest/sendTx/lighter-go-issue-5.jsonl", 1, 21511, RefusalKind.FINAL, "invalid tx type"),
])
async def test_send_refused(path: str, line: int, code: int, kind: RefusalKind, cause: str) -> None:
    rec = record(path, line)
    with pytest.raises(ApiException) as raised:  # as an HTTP 400 body (lighter-python #60 recorded 400)
        await sdk_answer(rec, rec.http_status or 400)
    in_body = classify_answer(await sdk_answer(rec, 200), None)  # and as a 200 body with the code
    for result in (classify_failure(raised.value, "signed"), in_body):
        assert (result.status, result.code) == (SendStatus.REJECTED, code)
        assert result.refusal is not None and (result.refusal.kind, result.refusal.cause) == (kind, cause)
        assert result.worth_retrying is (kind is not RefusalKind.FINAL)


ACTIVE = "rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl"
LIMITS = "rest/accountLimits/hftbacktest_testnet-2026-07-30.jsonl"


class Tokens:
    """The adapter's token source: token1, token2, ... and whether each was asked fresh."""

    def __init__(self) -> None:
        self.fresh: list[bool] = []

    async def __call__(self, fresh: bool = False) -> str:
        self.fresh.append(fresh)
        return f"token{len(self.fresh)}"


class RefusingOrderApi:
    """accountActiveOrders refused for the tokens in `refused` as the venue refused a token (accountLimits
    line 2: HTTP 401, 20013 invalid deadline), answered with ACTIVE line 1 for any other."""

    def __init__(self, *refused: str) -> None:
        self.refused = set(refused)
        self.tokens: list[str] = []

    async def account_active_orders(self, authorization: str, **_: Any) -> Any:
        self.tokens.append(authorization)
        if authorization in self.refused:
            await sdk_answer(record(LIMITS, 2))  # raises, as lighter-sdk raises on a 401
        return await sdk_answer(record(ACTIVE, 1))


def reader(api: RefusingOrderApi, tokens: Tokens) -> AccountReader:
    return AccountReader(account_index=516, order_api=cast(Any, api), account_api=cast(Any, None),
                         throttle=RequestThrottle("premium"), timeout_s=5.0, auth_token=tokens)


async def test_a_read_refused_for_its_token_is_made_again_with_a_new_one() -> None:
    tokens, api = Tokens(), RefusingOrderApi("token1")
    orders = await reader(api, tokens).open_orders(None)
    assert [o.client_order_index for o in orders] == [178554256601]
    assert tokens.fresh == [False, True] and api.tokens == ["token1", "token2"]


async def test_a_new_token_refused_too_ends_the_read_with_the_venues_code() -> None:
    tokens, api = Tokens(), RefusingOrderApi("token1", "token2")
    with pytest.raises(VenueError) as refused:
        await reader(api, tokens).open_orders(None)
    assert (refused.value.status, refused.value.code) == (401, 20013)
    assert api.tokens == ["token1", "token2"]  # once more, not until the budget runs out
