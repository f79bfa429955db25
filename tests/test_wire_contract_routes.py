"""The adapter's path for each corpus record, by channel or endpoint (no tests here).

`route(rec)` sends one record where production sends it and checks that the adapter took everything the
payload holds (every order, trade side, position, level, error) without raising; the literal values are
asserted in test_wire_contract_adapter*.py. A channel the bot does not read is decoded and recognised as not
its business: decoding must still accept it, since every frame on a connection passes the decoder.
"""

from __future__ import annotations

import json
from typing import Any

from lighter.exceptions import ApiException

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import LocalBook, parse_levels, parse_seq
from hedge_strategy.exchange.reads import (
    book_prices_of,
    checked_answer,
    fills_of,
    markets_of,
    open_positions_of,
    orders_of,
)
from hedge_strategy.exchange.rest import error_details, model_dict
from hedge_strategy.exchange.sender import SendStatus, classify_answer, classify_failure, nonce_of
from hedge_strategy.exchange.tx_outcomes import tx_outcome, tx_outcomes
from tests.fixtures.wire import WireRecord
from tests.test_wire_contract_kit import sdk_answer

ACCOUNT_CHANNELS = ("account_all_orders", "account_all_trades", "account_all_positions", "account_all",
                    "account_orders")
NOT_READ_BY_THE_BOT = ("account_all_assets", "height", "market_stats", "ticker", "user_stats")
CONTROL_TYPES = ("connected", "ping", "pong", "unsubscribed", "shutdown")


async def route(rec: WireRecord) -> None:
    if rec.kind == "ws":
        _route_ws(rec, _decoded(rec))
    else:
        await _route_rest(rec)


def _decoded(rec: WireRecord) -> dict[str, Any]:
    decoded = parsing.decode_frame(json.dumps(rec.payload))
    assert decoded == rec.payload, "the decoder refused or changed a captured frame"
    return decoded


def _route_ws(rec: WireRecord, frame: dict[str, Any]) -> None:
    if rec.name in ACCOUNT_CHANNELS:
        _account_frame(frame)
    elif rec.name == "account_tx":
        account = int(str(frame["channel"]).rsplit(":", 1)[1])
        assert len(list(tx_outcomes(frame, account))) == len(frame.get("txs") or [])
    elif rec.name == "trade":
        for trade in [*(frame.get("trades") or []), *(frame.get("liquidation_trades") or [])]:
            sides = {trade["ask_account_id"], trade["bid_account_id"]}
            fills = [f for account in sides for f in parsing.fills_for_account(trade, account)]
            assert len(fills) == 2, trade  # one per side, each with its own fee, ms time, order
    elif rec.name == "order_book":
        body = frame["order_book"]
        seq = parse_seq(frame, body)
        assert seq.offset is not None or seq.nonce is not None
        book = LocalBook(0)
        book.apply_snapshot(seq, parse_levels(body.get("bids")), parse_levels(body.get("asks")), 0)
        levels = len(body.get("bids") or []) + len(body.get("asks") or [])
        assert len(book.bids()) + len(book.asks()) <= levels  # zero sizes are removals
    elif rec.name == "control":
        error = parsing.ws_error(frame)
        assert error is not None or frame.get("type") in CONTROL_TYPES, frame
        if error is not None:
            assert error.code is not None and error.message
    elif rec.name == "sendtx":
        result = classify_answer(frame, None)
        assert result.status in (SendStatus.ACCEPTED, SendStatus.REJECTED)
        assert (result.refusal is None) is result.accepted
    else:
        assert rec.name in NOT_READ_BY_THE_BOT, f"no adapter route for ws channel {rec.name!r}"
        assert parsing.ws_error(frame) is None
        stage, _, family = str(frame.get("type")).partition("/")
        assert stage in ("subscribed", "update") and family == rec.name


def _account_frame(frame: dict[str, Any]) -> None:
    account = int(str(frame["channel"]).rsplit(":", 1)[1])
    got = list(parsing.account_events(frame, account))
    orders = [o for _, items in parsing.by_market(frame.get("orders"), "orders") for o in items]
    trades = [t for _, items in parsing.by_market(frame.get("trades"), "trades") for t in items]
    positions = [p for _, value in parsing.by_market(frame.get("positions"), "positions")
                 for p in (value if isinstance(value, list) else [value])]
    assert len(got) == len(orders) + len(trades) + len(positions)


async def _route_rest(rec: WireRecord) -> None:
    code = rec.payload.get("code")
    if rec.name == "sendTx":
        await _send_answer(rec)
        return
    if code != 200:  # an error body: HTTP 4xx raises in the SDK, the adapter reads its code and message
        try:
            await sdk_answer(rec, rec.http_status if rec.http_status not in (None, 200) else 400)
        except ApiException as exc:
            _, error_code, message = error_details(exc)
            assert (error_code, message) == (code, rec.payload["message"])
        else:
            raise AssertionError("an error body did not raise")
        return
    answer = checked_answer(rec.name, model_dict(await sdk_answer(rec)))
    if rec.name == "account":
        accounts = answer["accounts"]
        open_positions_of(answer, accounts[0]["account_index"])
    elif rec.name in ("accountActiveOrders", "accountInactiveOrders", "accountOrders"):
        owners = {o["owner_account_index"] for o in answer["orders"]}
        assert sum(len(orders_of(answer, owner)) for owner in owners) == len(answer["orders"])
    elif rec.name in ("trades", "recentTrades"):
        for trade in answer["trades"]:
            for account in {trade["ask_account_id"], trade["bid_account_id"]}:
                assert fills_of({"trades": [trade]}, account)
    elif rec.name == "orderBookDetails":
        assert len(markets_of(answer)) == len(answer["order_book_details"])
    elif rec.name == "orderBookOrders":
        bids, asks = book_prices_of(answer)
        assert len(bids) == len(answer["bids"]) and len(asks) == len(answer["asks"])
    elif rec.name == "nextNonce":
        assert nonce_of(answer) > 0
    elif rec.name == "tx":
        assert tx_outcome(answer, answer["account_index"]) is not None
    else:
        assert rec.name in ("accountLimits", "orderBooks"), f"no adapter route for endpoint {rec.name!r}"


async def _send_answer(rec: WireRecord) -> None:
    if rec.payload["code"] == 200:
        assert classify_answer(await sdk_answer(rec), None).accepted
        return
    # The status was not always recorded: a refusal reads the same in a 200 body and in a 400 body.
    in_body = classify_answer(await sdk_answer(rec, 200), None)
    try:
        await sdk_answer(rec, rec.http_status or 400)
    except ApiException as exc:
        in_error = classify_failure(exc, None)
    else:
        raise AssertionError("an error body did not raise")
    for result in (in_body, in_error):
        assert result.status is SendStatus.REJECTED and result.refusal is not None
    assert in_body.refusal == in_error.refusal

