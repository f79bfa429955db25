"""Bus message schema: construction, JSON round trips and strict rejection (hedge_strategy.bus.messages)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hedge_strategy.bus import BusMessageError, HedgeOutcome, HedgeRequest, PauseState, request_id_for
from hedge_strategy.exchange.events import Side


def a_request(**changes: Any) -> HedgeRequest:
    request = HedgeRequest.for_fills(
        pair="demo",
        market="BTC",
        market_id=1,
        a_fill_side=Side.BUY,
        size=Decimal("0.0002"),
        a_client_order_index=11000000000042,
        trade_ids=[9001],
        a_fill_price=Decimal("95000.1"),
        fill_ts_ms=1_700_000_000_000,
    )
    return replace(request, **changes) if changes else request


def an_outcome(**changes: Any) -> HedgeOutcome:
    outcome = HedgeOutcome(
        pair="demo",
        request_ids=("11000000000042-9001",),
        status="filled",
        market="BTC",
        side="sell",
        requested_size=Decimal("0.0002"),
        filled_size=Decimal("0.0002"),
        avg_price=Decimal("94999.9"),
        attempts=1,
        reason=None,
        hedge_client_order_indexes=(22000000000001,),
        received_ts_ms=1_700_000_000_001,
        sent_ts_ms=1_700_000_000_003,
        filled_ts_ms=1_700_000_000_010,
        latency_ms=2.5,
    )
    return replace(outcome, **changes) if changes else outcome


def test_request_for_fills_hedges_the_opposite_side_with_a_derived_id() -> None:
    request = a_request()
    assert request.side == "sell" and type(request.side) is str
    assert request.request_id == "11000000000042-9001"
    assert request.trade_ids == (9001,) and not request.is_residual
    netted = HedgeRequest.for_fills(
        pair="demo",
        market="BTC",
        market_id=1,
        a_fill_side="sell",
        size=Decimal("0.0004"),
        a_client_order_index=7,
        trade_ids=[12, 3],
        a_fill_price=Decimal("95000"),
        fill_ts_ms=1,
    )
    assert netted.side == "buy" and netted.request_id == "7-3+12" == request_id_for(7, [3, 12])
    residual = HedgeRequest.for_residual(
        pair="demo",
        market="BTC",
        market_id=1,
        side=Side.SELL,
        size=Decimal("0.0001"),
        a_client_order_index=14000000000001,
        seen_ts_ms=5,
    )
    assert residual.request_id == "14000000000001-residual" and residual.is_residual
    assert residual.a_fill_price is None


def test_request_json_round_trip_is_versioned_with_decimal_strings() -> None:
    request = a_request(publish_ts_ms=1_700_000_000_002)
    body = json.loads(request.to_json())
    assert body["v"] == 1 and body["type"] == "hedge_request"
    assert body["size"] == "0.0002" and body["a_fill_price"] == "95000.1" and body["trade_ids"] == [9001]
    assert HedgeRequest.from_json(request.to_json()) == request
    assert HedgeRequest.from_json(request.to_json().encode()) == request


def test_outcome_and_pause_round_trip() -> None:
    outcome = an_outcome()
    assert HedgeOutcome.from_json(outcome.to_json()) == outcome
    failed = an_outcome(
        status="failed",
        filled_size=Decimal("0"),
        avg_price=None,
        reason="21130 not enough margin",
        sent_ts_ms=None,
        filled_ts_ms=None,
        latency_ms=None,
    )
    assert HedgeOutcome.from_json(failed.to_json()) == failed and not failed.filled
    pause = PauseState(reason="hedge failed", by="A", since_ms=1)
    assert PauseState.from_json(pause.to_json()) == pause


def mutate(message: Any, **changes: Any) -> str:
    body = json.loads(message.to_json())
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return json.dumps(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (mutate(a_request(), v=2), "unsupported version 2"),
        (mutate(a_request(), v=True), "unsupported version True"),
        (mutate(a_request(), v=...), "unsupported version None"),
        (mutate(a_request(), type="hedge_outcome"), "expected type 'hedge_request'"),
        (mutate(a_request(), size=...), "missing field(s) size"),
        (mutate(a_request(), colour="red"), "unknown field(s) colour"),
        (mutate(a_request(), size=0.0002), "size must be a decimal string"),
        (mutate(a_request(), size="-1"), "size must be a decimal > 0"),
        (mutate(a_request(), size="lots"), "size must be a decimal > 0 below 1E+12 with at most 18 "
                                           "fractional digits, got 'lots'"),
        (mutate(a_request(), side="long"), "side must be one of buy, sell"),
        (mutate(a_request(), trade_ids=9001), "trade_ids must be a list"),
        (mutate(a_request(), trade_ids=[True]), "trade_ids must be a list of integers"),
        (mutate(a_request(), market_id="1"), "market_id must be an integer"),
        (mutate(a_request(), pair=""), "pair must be a non-empty string"),
        (mutate(a_request(), request_id="11000000000042-9002"), "does not match its order and fills"),
        (mutate(a_request(), a_fill_price=None), "a_fill_price must be a decimal > 0"),
    ],
)
def test_malformed_requests_are_rejected_with_the_reason(raw: str, expected: str) -> None:
    with pytest.raises(BusMessageError) as info:
        HedgeRequest.from_json(raw)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": "failed", "reason": None}, "reason must be a non-empty string"),
        ({"avg_price": None}, "avg_price is required when filled_size > 0"),
        ({"request_ids": ()}, "request_ids must be a non-empty list"),
        ({"status": "maybe"}, "status must be one of filled, failed"),
        ({"attempts": -1}, "attempts must be an integer >= 0"),
        ({"latency_ms": "fast"}, "latency_ms must be a number"),
    ],
)
def test_invalid_outcomes_cannot_be_built(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(BusMessageError, match=expected):
        an_outcome(**changes)


def test_lists_given_to_a_message_become_tuples() -> None:
    outcome = an_outcome(request_ids=["a-1", "a-2"], hedge_client_order_indexes=[1, 2])
    assert outcome.request_ids == ("a-1", "a-2") and outcome.hedge_client_order_indexes == (1, 2)


def test_requests_that_net_to_nothing_are_answered_filled_without_an_order() -> None:
    netted = an_outcome(
        request_ids=("7-1", "8-2"),
        requested_size=Decimal("0"),
        filled_size=Decimal("0"),
        avg_price=None,
        attempts=0,
        hedge_client_order_indexes=(),
        sent_ts_ms=None,
        latency_ms=None,
    )
    assert netted.filled and HedgeOutcome.from_json(netted.to_json()) == netted


# ----- poison messages: whatever the bytes, decoding raises BusMessageError and nothing else --------------

DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this


def with_field(message: Any, name: str, raw_json_value: str) -> str:
    """`message` as JSON with field `name` replaced by raw JSON text (which json.dumps could not produce)."""
    body = json.loads(message.to_json())
    body[name] = "__HOLE__"
    return json.dumps(body).replace('"__HOLE__"', raw_json_value)


@pytest.mark.parametrize("cls", [HedgeRequest, HedgeOutcome, PauseState])
@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        with_field(a_request(), "pair", DEEP),
        with_field(a_request(), "fill_ts_ms", "9" * 5000),  # int() refuses over 4300 digits: ValueError
        '{"v": 1, "type": "pause", "reason": "x", "by": "ctl", "since_ms": ' + "1" * 5000 + "}",
    ],
    ids=["nested-top", "nested-field", "huge-int-field", "huge-int-pause"],
)
def test_undecodable_json_is_a_bus_message_error(cls: Any, raw: str) -> None:
    with pytest.raises(BusMessageError) as info:
        cls.from_json(raw)
    assert len(str(info.value)) < 400  # the reason is one short line, never the raw value


def test_a_long_bad_value_is_shortened_in_the_reason() -> None:
    with pytest.raises(BusMessageError) as info:
        HedgeRequest.from_json(mutate(a_request(), side="x" * 100_000))
    assert "side must be one of buy, sell" in str(info.value) and len(str(info.value)) < 400


# ----- bounded numbers ----------------------------------------------------------------------------------

BIG_COID = 2**63


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (mutate(a_request(), size="1E+40"), "size must be a decimal > 0 below 1E+12"),
        (mutate(a_request(), size="1000000000000"), "size must be a decimal > 0 below 1E+12"),
        (mutate(a_request(), size="Infinity"), "size must be a decimal > 0"),
        (mutate(a_request(), size="NaN"), "size must be a decimal > 0"),
        (mutate(a_request(), size="0.0000000000000000001"), "at most 18 fractional digits"),
        (mutate(a_request(), size="1E-19"), "at most 18 fractional digits"),
        (mutate(a_request(), a_fill_price="1E+13"), "a_fill_price must be a decimal > 0 below 1E+12"),
        (mutate(a_request(), fill_ts_ms=10**14 + 1), "fill_ts_ms must be an integer >= 0 and <= 10000"),
        (mutate(a_request(), publish_ts_ms=10**20), "publish_ts_ms must be an integer >= 0"),
        (mutate(a_request(), seen_ts_us=10**17 + 1), "seen_ts_us must be an integer >= 0"),
        (mutate(a_request(), market_id=2**64), "market_id must be an integer >= 0"),
        (mutate(a_request(), trade_ids=[BIG_COID], request_id=f"11000000000042-{BIG_COID}"),
         "trade_ids must be a list of integers >= 0 and <= 9223372036854775807"),
        (mutate(a_request(), a_client_order_index=BIG_COID, request_id=f"{BIG_COID}-9001"),
         "a_client_order_index must be an integer >= 0"),
    ],
)
def test_out_of_bounds_numbers_in_requests_are_rejected(raw: str, expected: str) -> None:
    with pytest.raises(BusMessageError) as info:
        HedgeRequest.from_json(raw)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"filled_ts_ms": 10**17}, "filled_ts_ms must be an integer >= 0"),
        ({"received_ts_ms": 10**14 + 1}, "received_ts_ms must be an integer >= 0"),
        ({"hedge_client_order_indexes": (BIG_COID,)}, "hedge_client_order_indexes must be a list"),
        ({"latency_ms": float("inf")}, "latency_ms must be a number >= 0"),
        ({"latency_ms": float("nan")}, "latency_ms must be a number >= 0"),
        ({"avg_price": Decimal("1E+12")}, "avg_price must be a decimal > 0 below 1E+12"),
        ({"requested_size": Decimal("1E+40")}, "requested_size must be a decimal >= 0 below 1E+12"),
        ({"attempts": 2**63}, "attempts must be an integer >= 0"),
    ],
)
def test_out_of_bounds_numbers_in_outcomes_are_rejected(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(BusMessageError, match=re.escape(expected)):
        an_outcome(**changes)
    with pytest.raises(BusMessageError, match=re.escape(expected)):  # and the same values arriving as JSON
        HedgeOutcome.from_json(with_field(an_outcome(), *_json_field(changes)))


def _json_field(changes: dict[str, Any]) -> tuple[str, str]:
    [(name, value)] = changes.items()
    if isinstance(value, Decimal):
        return name, json.dumps(str(value))
    if isinstance(value, tuple):
        return name, json.dumps(list(value))
    return name, json.dumps(value)  # inf and nan become Infinity and NaN, which json.loads accepts


def test_numbers_at_the_bounds_are_accepted() -> None:
    request = a_request(
        size=Decimal("999999999999.999999999999999999"),
        fill_ts_ms=10**14,
        seen_ts_us=10**17,
        publish_ts_ms=10**14,
    )
    assert HedgeRequest.from_json(request.to_json()) == request
    top = 2**63 - 1
    edge = HedgeRequest.for_fills(
        pair="demo", market="BTC", market_id=top, a_fill_side="buy", size=Decimal("0.000000000000000001"),
        a_client_order_index=top, trade_ids=[top, 0], a_fill_price=Decimal("1E-18"), fill_ts_ms=0,
    )
    assert HedgeRequest.from_json(edge.to_json()) == edge
    assert PauseState.from_json(PauseState("r", "ctl", 10**14).to_json()).since_ms == 10**14


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    pair = '[{"\\' * 1000  # brackets, quotes and backslashes: JSON escapes them inside the string
    assert HedgeRequest.from_json(mutate(a_request(), pair=pair)).pair == pair
    nested_ok = with_field(a_request(), "trade_ids", "[" * 31 + "]" * 31)  # 32 levels with the object
    with pytest.raises(BusMessageError, match="trade_ids must be a list of integers"):
        HedgeRequest.from_json(nested_ok)
    too_deep = with_field(a_request(), "trade_ids", "[" * 32 + "]" * 32)
    with pytest.raises(BusMessageError, match="nested deeper than 32 levels"):
        HedgeRequest.from_json(too_deep)
