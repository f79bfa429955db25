"""What `hedgectl preflight` reads off each WebSocket frame: its corpus name, whether the adapter's parsers
accept every item in it (strictly: where the stream logs and skips a bad item, this reports it), its place
in the order book's sequence, and the venue's timestamp.

Book continuity: since Lighter's API upgrade of December 2025 an `order_book` update continues the book
when its `begin_nonce` equals the previous frame's `nonce` (captured venue traffic; `offset` then belongs to
the API server and is not +1 per update). Frames without nonces (captures before the upgrade, and the
simulator until it emits them) are checked by the older rule, `offset` = previous + 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import parse_levels
from hedge_strategy.exchange.preflight_reads import timestamp_ms
from hedge_strategy.exchange.stream import PRIVATE_CHANNELS

CONTROL = "control"  # the corpus name of frames that belong to no channel: connected, ping, pong, error...
BOOK = "order_book"
BOT_CHANNELS = (BOOK, *PRIVATE_CHANNELS)


SENDTX = "sendtx"  # answers to `jsonapi/sendtx` (preflight sends none; named as the corpus names them)
AUTH_ERROR_CODES = (20013, 21140)  # 20013 "invalid auth: ..." captured; 21140 the simulator's older code


def record_name(frame: Any) -> str:
    """The corpus name of a frame: `order_book`, `account_all_orders`, ... for a channel's snapshot or
    update, `sendtx` for a transaction's answer, `control` for the rest (connected, ping, pong, unsubscribed,
    shutdown, every error frame)."""
    kind = frame.get("type") if isinstance(frame, dict) else None
    if isinstance(kind, str):
        stage, _, family = kind.partition("/")
        if stage in ("subscribed", "update") and family:
            return family
        if stage == "jsonapi":
            return SENDTX
    return CONTROL


def error_channel(error: Mapping[str, Any], candidates: Iterable[str]) -> str | None:
    """The channel key (`account_all_orders:101`) an error frame is about: its `channel` field, else the
    first of `candidates` its message names (captured errors carry no channel field but end their message
    with it: "invalid auth: expired token: account_all_orders:225671")."""
    channel = error.get("channel")
    if isinstance(channel, str) and channel:
        return parsing.channel_key(channel)
    message = str(error.get("message", ""))
    return next((key for key in candidates if message.endswith(key) or f"{key} " in message), None)


def frame_problems(frame: Mapping[str, Any], account_index: int) -> list[str]:
    """Why the adapter could not use (part of) a channel frame; empty when every item parses."""
    family = record_name(frame)
    try:
        if family == BOOK:
            _check_book(frame)
            return []
        if family == "account_all_orders":
            items = _items(frame, "orders")
            return _problems(items, lambda raw, _m: parsing.order_update(raw, account_index), "order")
        if family == "account_all_trades":
            items = _items(frame, "trades")
            return _problems(items, lambda raw, _m: parsing.fills_for_account(raw, account_index), "trade")
        if family == "account_all_positions":
            items = _items(frame, "positions")
            return _problems(items, lambda raw, m: parsing.position_snapshot(raw, account_index, m),
                             "position")
    except parsing.PARSE_ERRORS as exc:
        return [f"{family}: {type(exc).__name__}: {exc}"]
    return []


def _check_book(frame: Mapping[str, Any]) -> None:
    # What AccountStream._on_book needs: a body with an offset and levels it can read.
    body = frame["order_book"]
    if not isinstance(body, Mapping):
        raise TypeError("order_book is not an object")
    parsing.to_int(frame.get("offset", body.get("offset")))
    parse_levels(body.get("bids"))
    parse_levels(body.get("asks"))


def _items(frame: Mapping[str, Any], key: str) -> list[tuple[int | None, Any]]:
    """(market id, item) of an account channel's `{"<market_id>": [item, ...] | item}` map, strictly."""
    payload = frame.get(key)
    if payload is None:
        return []
    if isinstance(payload, list):
        return [(None, item) for item in payload]
    if not isinstance(payload, Mapping):
        raise TypeError(f"{key} is neither a map nor a list")
    items: list[tuple[int | None, Any]] = []
    for market, value in payload.items():
        market_id = parsing.to_int(market)  # ValueError for a non-numeric market key
        items.extend((market_id, item) for item in (value if isinstance(value, list) else [value]))
    return items


def _problems(items: list[tuple[int | None, Any]], parse: Any, what: str) -> list[str]:
    problems: list[str] = []
    for market_id, item in items:
        try:
            parse(item, market_id)
        except parsing.PARSE_ERRORS as exc:
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
    return problems


@dataclass(frozen=True)
class BookMark:
    """Where one order book frame sits in the book's sequence."""

    nonce: int | None
    begin_nonce: int | None
    offset: int | None


def book_mark(frame: Mapping[str, Any]) -> BookMark:
    body = frame.get("order_book")
    body = body if isinstance(body, Mapping) else {}

    def number(key: str) -> int | None:
        for source in (body, frame):  # captured frames carry the nonces in the body, the offset in both
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    return BookMark(number("nonce"), number("begin_nonce"), number("offset"))


def continuity_rule(mark: BookMark) -> str:
    return "nonce" if mark.nonce is not None and mark.begin_nonce is not None else "offset"


def continuity_break(previous: BookMark, update: BookMark) -> str | None:
    """Why `update` does not continue the book after `previous`, or None when it does."""
    if update.begin_nonce is not None and previous.nonce is not None:
        if update.begin_nonce == previous.nonce:
            return None
        return f"begin_nonce {update.begin_nonce} after nonce {previous.nonce}"
    if update.offset is not None and previous.offset is not None:
        if update.offset == previous.offset + 1:
            return None
        return f"offset {update.offset} after {previous.offset} (no nonces: the offset + 1 rule)"
    return "neither nonces nor offsets to compare"


def frame_time_ms(frame: Mapping[str, Any]) -> int | None:
    """The venue's timestamp of a frame (top-level `timestamp`, ms in captures), when it has one."""
    value, _resolution = timestamp_ms(frame.get("timestamp"))
    return value


def channel_names(account_index: int, market_id: int) -> Iterator[tuple[str, bool]]:
    """(subscribe name, needs auth) of every channel one bot process subscribes, as `AccountStream` does."""
    yield f"{BOOK}/{market_id}", False
    for name in PRIVATE_CHANNELS:
        yield f"{name}/{account_index}", True
