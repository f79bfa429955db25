"""Shared pieces of the adapter's wire contract tests (no tests here): corpus records through the adapter.

Every helper enters the adapter where production does: WebSocket frames as JSON text through
`parsing.decode_frame`; REST bodies through lighter-sdk's own response deserialisation (the `ApiClient` path
an API method takes, raising `ApiException` for a non-2xx status) and then the adapter's answer functions.
`skips` collects the adapter's "skipped"/"malformed" warnings: a contract test asserts there are none, so a
payload the adapter would silently drop fails instead of passing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from lighter.api_client import ApiClient
from lighter.rest import RESTResponse
from loguru import logger

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.rest import model_dict
from tests.fixtures.wire import CORPUS_DIR, WireRecord, read_file

# The SDK response type of each endpoint the adapter reads (lighter-sdk 1.1.8 `_response_types_map`).
RESPONSE_TYPES = {
    "account": "DetailedAccounts",
    "accountActiveOrders": "Orders",
    "accountInactiveOrders": "Orders",
    "accountOrders": "Orders",
    "accountLimits": "AccountLimits",
    "nextNonce": "NextNonce",
    "orderBookDetails": "OrderBookDetails",
    "orderBookOrders": "OrderBookOrders",
    "orderBooks": "OrderBooks",
    "recentTrades": "Trades",
    "sendTx": "RespSendTx",
    "trades": "Trades",
    "tx": "EnrichedTx",
}


def record(path: str, line: int) -> WireRecord:
    """Line `line` (1-based, as editors count) of the corpus file `path` (relative to tests/wire/)."""
    found = [r for r in read_file(CORPUS_DIR / path) if r.line == line]
    assert found, f"{path}:{line} is not a record"
    return found[0]


def frame(path: str, line: int) -> dict[str, Any]:
    """A WebSocket record as the adapter's frame decoder returns it from the wire text."""
    rec = record(path, line)
    assert rec.kind == "ws", rec
    decoded = parsing.decode_frame(json.dumps(rec.payload))
    assert decoded is not None, f"{path}:{line}: the adapter's decoder refused the frame"
    return decoded


async def sdk_answer(rec: WireRecord, status: int | None = None) -> Any:
    """A REST record through lighter-sdk's response deserialisation, exactly as its API methods run it:
    the response model for HTTP 200; `ApiException` (BadRequestException, ...) raised otherwise."""
    http_status = status if status is not None else (rec.http_status or 200)
    raw = SimpleNamespace(status=http_status, reason="", headers={"content-type": "application/json"})
    response = RESTResponse(raw)
    response.data = json.dumps(rec.payload).encode()
    types = {"200": RESPONSE_TYPES[rec.name], "400": "ResultCode"}
    async with ApiClient() as client:  # its aiohttp session needs a running loop, and closing
        return client.response_deserialize(response, types).data


async def rest_body(path: str, line: int) -> dict[str, Any]:
    """An HTTP 200 REST record as the adapter's readers hold it: the SDK model as a plain dict."""
    return model_dict(await sdk_answer(record(path, line)))


@pytest.fixture
def skips() -> Iterator[list[str]]:
    """The adapter's warnings about items or frames it skipped (must stay empty in a contract test)."""
    seen: list[str] = []

    def sink(message: Any) -> None:
        text = message.record["message"]
        if "skipped" in text or "malformed" in text:
            seen.append(text)

    sink_id = logger.add(sink, level="WARNING")
    yield seen
    logger.remove(sink_id)
